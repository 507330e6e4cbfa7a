-- wallet_summary gains held_stars: stars an open dispute on one of the user's payments keeps
-- out of the balance (redefines it from 20261127001700_create_wallet_summary). They are not in
-- star_balance, so readings and exchange cannot spend them.

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
    'held_stars', (select coalesce(sum(d.stars_held), 0)::bigint
                     from public.payment_disputes d
                     join public.payments p on p.id = d.payment_id
                    where p.user_id = u.id),
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
