create or replace function public.wallet_summary()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
    'user_id', u.id,
    'star_balance', u.star_balance,
    'coin_balance', u.coin_balance,
    'tier', u.tier,
    'total_invites', u.total_invites,
    'invite_code', u.invite_code,
    -- An invite past its expiry no longer waits for a payment, even before the sweep runs.
    'pending_invites', (select count(*) from public.user_invites i
                         where i.inviter_id = u.id and i.status = 'pending'
                           and i.expires_at > pg_catalog.now()),
    'coins_per_star', (select s.coins_per_star from public.pricing_settings s)
  )
  from public.users u
  where u.id = (select auth.uid())
$$;

drop function private.held_stars(uuid);
