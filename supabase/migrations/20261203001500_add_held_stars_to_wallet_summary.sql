-- wallet_summary gains held_stars: stars an open dispute on one of the user's payments keeps
-- out of the balance (redefines it from 20261127001700_create_wallet_summary). They are not in
-- star_balance, so readings and exchange cannot spend them.
--
-- private.held_stars: per payment with an open dispute, the stars its reversals took from the
-- balance minus what they would take without the open disputes (refunds and lost disputes
-- only). Computed from the payment's facts, so it is the same whatever order the events came in;
-- 0 once no dispute is open.

create function private.held_stars(p_user_id uuid)
returns bigint
language sql
stable
set search_path = ''
as $$
  select coalesce(sum(greatest(0,
           (p.stars_clawed_back - p.stars_shortfall)::bigint
           - p.stars_total::bigint * least(p.amount, p.amount_refunded + lost.amount)
             / p.amount)), 0)::bigint
    from public.payments p
   cross join lateral (select coalesce(sum(d.amount), 0)::bigint as amount
                         from public.payment_disputes d
                        where d.payment_id = p.id and d.status = 'lost') lost
   where p.user_id = p_user_id
     and exists (select 1 from public.payment_disputes d
                  where d.payment_id = p.id and d.status in ('needs_response', 'under_review'))
$$;

revoke all on function private.held_stars(uuid) from public, anon, authenticated;
grant execute on function private.held_stars(uuid) to service_role;

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
    'held_stars', private.held_stars(u.id),
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
