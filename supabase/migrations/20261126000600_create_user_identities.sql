-- Every (provider, external id) a user signs in with; a verified email links a new provider's
-- identity to the existing user.

create table public.user_identities (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  provider text not null check (char_length(provider) between 1 and 50),
  external_id text not null check (char_length(external_id) between 1 and 255),
  email text check (email is null or char_length(email) between 3 and 320),
  email_verified boolean not null default false,
  created_at timestamptz not null default now(),
  last_login_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint user_identities_provider_external_id_key unique (provider, external_id)
);

create index user_identities_user_id_idx on public.user_identities (user_id);
create index user_identities_email_lower_idx on public.user_identities (lower(email))
  where email is not null;

create trigger user_identities_set_updated_at before update on public.user_identities
  for each row execute function private.set_updated_at();

alter table public.user_identities enable row level security;

revoke all on table public.user_identities from public, anon, authenticated;
grant select on table public.user_identities to authenticated;
grant select, insert, update, delete on table public.user_identities to service_role;

create policy user_identities_select_own on public.user_identities
  for select to authenticated
  using (user_id = (select auth.uid()));
