-- Users, one row per person, whichever providers they sign in with (see user_identities).

-- Short, unambiguous invite codes: 8 characters from 31 (no 0/O, 1/I/L), about 8.5e11 codes.
-- A default, not a generated column: generated columns must be immutable (design defect 2).
create function private.generate_invite_code()
returns text
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  alphabet constant text := '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
  code text;
  random_bytes bytea;
  b integer;
  i integer;
begin
  loop
    code := '';
    while char_length(code) < 8 loop
      -- gen_random_uuid() is built in and cryptographically random; bytes 0-5 and 10-15 carry
      -- no version or variant bits.
      random_bytes := substring(uuid_send(gen_random_uuid()) from 1 for 6)
                      || substring(uuid_send(gen_random_uuid()) from 11 for 6);
      for i in 0 .. length(random_bytes) - 1 loop
        b := get_byte(random_bytes, i);
        -- Rejection sampling keeps every character equally likely.
        if b < 248 and char_length(code) < 8 then
          code := code || substr(alphabet, b % 31 + 1, 1);
        end if;
      end loop;
    end loop;
    -- Retry on a collision with an existing code; the unique index is the final guard.
    exit when not exists (select 1 from public.users u where u.invite_code = code);
  end loop;
  return code;
end
$$;

revoke all on function private.generate_invite_code() from public, anon, authenticated;
grant execute on function private.generate_invite_code() to service_role;

create table public.users (
  id uuid primary key default gen_random_uuid(),

  -- The identity the user was created with; every identity is in user_identities.
  external_id text not null check (char_length(external_id) between 1 and 255),
  external_provider text not null check (char_length(external_provider) between 1 and 50),
  email text check (email is null or char_length(email) between 3 and 320),
  name text check (name is null or char_length(name) <= 255),
  picture_url text check (picture_url is null or char_length(picture_url) <= 2048),

  star_balance bigint not null default 0 check (star_balance >= 0),
  coin_balance bigint not null default 0 check (coin_balance >= 0),

  invite_code text not null default private.generate_invite_code()
    check (invite_code ~ '^[2-9A-HJKMNP-Z]{8}$'),
  invited_by uuid references public.users (id) on delete set null,
  total_invites integer not null default 0 check (total_invites >= 0),
  tier public.user_tier not null default 'bronze',

  created_at timestamptz not null default now(),
  last_login_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),

  constraint users_external_identity_key unique (external_provider, external_id),
  constraint users_invite_code_key unique (invite_code),
  constraint users_not_invited_by_self check (invited_by is null or invited_by <> id)
);

-- One account per email address, whatever its case.
create unique index users_email_lower_key on public.users (lower(email));
create index users_invited_by_idx on public.users (invited_by) where invited_by is not null;
create index users_created_at_idx on public.users (created_at desc);

create trigger users_set_updated_at before update on public.users
  for each row execute function private.set_updated_at();

alter table public.users enable row level security;

revoke all on table public.users from public, anon, authenticated;
grant select on table public.users to authenticated;
-- Column grants: a user may change their display name and picture, nothing else (the design
-- document's policy let users set their own balances and tier).
grant update (name, picture_url) on table public.users to authenticated;
grant select, insert, delete on table public.users to service_role;
-- Balances, tier, invite counters and invite links change only inside SQL functions owned by the
-- migration role, next to their ledger rows; not even the service key may write them directly.
grant update (external_id, external_provider, email, name, picture_url, last_login_at)
  on table public.users to service_role;

create policy users_select_own on public.users
  for select to authenticated
  using (id = (select auth.uid()));

create policy users_update_own on public.users
  for update to authenticated
  using (id = (select auth.uid()))
  with check (id = (select auth.uid()));
