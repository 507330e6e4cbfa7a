-- Invites: a user redeems one inviter's code; the inviter is rewarded when the invitee's first
-- payment succeeds.

-- Expiry from the pricing settings, so the 30 days live in one place.
create function private.invite_expires_at()
returns timestamptz
language sql
stable
security definer
set search_path = ''
as $$
  select now() + make_interval(days => s.invite_expiry_days)
  from public.pricing_settings s
$$;

revoke all on function private.invite_expires_at() from public, anon, authenticated;
grant execute on function private.invite_expires_at() to service_role;

create table public.user_invites (
  id uuid primary key default gen_random_uuid(),

  inviter_id uuid not null references public.users (id) on delete cascade,
  -- One invite per invitee: a user redeems at most one code.
  invitee_id uuid unique references public.users (id) on delete set null,
  invite_code text not null references public.users (invite_code),

  coin_reward integer check (coin_reward is null or coin_reward > 0),
  is_reward_claimed boolean not null default false,

  status public.invite_status not null default 'pending',
  metadata jsonb,

  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  accepted_at timestamptz,
  expires_at timestamptz not null default private.invite_expires_at(),

  constraint user_invites_not_self check (invitee_id is null or invitee_id <> inviter_id),
  constraint user_invites_accepted_at check ((status = 'accepted') = (accepted_at is not null)),
  constraint user_invites_claimed_has_reward check (not is_reward_claimed or coin_reward is not null)
);

create index user_invites_inviter_idx on public.user_invites (inviter_id, created_at desc);
create index user_invites_invite_code_idx on public.user_invites (invite_code);
create index user_invites_pending_expiry_idx on public.user_invites (expires_at)
  where status = 'pending';

create trigger user_invites_set_updated_at before update on public.user_invites
  for each row execute function private.set_updated_at();

alter table public.user_invites enable row level security;

revoke all on table public.user_invites from public, anon, authenticated;
grant select on table public.user_invites to authenticated;
grant select, insert, update, delete on table public.user_invites to service_role;

-- One policy per command and role: a user sees an invite they sent or redeemed.
create policy user_invites_select_own on public.user_invites
  for select to authenticated
  using (inviter_id = (select auth.uid()) or invitee_id = (select auth.uid()));
