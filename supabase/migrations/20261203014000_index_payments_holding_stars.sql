-- wallet_summary's held stars read only the payments whose reversals took stars that are still
-- out of the balance (redefines private.held_stars from 20261203001500_add_held_stars_to_wallet_summary).
--
-- Before, held_stars read every payment of the user and probed its disputes: a user with 200
-- payments and no dispute read 200 rows for a figure of 0. A payment contributes
--   greatest(0, (stars_clawed_back - stars_shortfall) - stars_total x least(amount, refunded +
--   lost) / amount)
-- and the subtracted part is never negative (amount > 0, amount_refunded >= 0, a dispute's
-- amount > 0, stars_total > 0: check constraints), so a payment with
-- stars_clawed_back <= stars_shortfall contributes 0 whatever its disputes. Leaving those out
-- gives the same sum, and a partial index holds exactly the rest: payments with stars taken
-- back, which are few, and none for most users. The index changes only when a reversal
-- changes what a payment took back.

create index payments_user_stars_held_idx on public.payments (user_id)
  where stars_clawed_back > stars_shortfall;

create or replace function private.held_stars(p_user_id uuid)
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
     -- The index's predicate: only these payments can hold stars (see above).
     and p.stars_clawed_back > p.stars_shortfall
     and exists (select 1 from public.payment_disputes d
                  where d.payment_id = p.id and d.status in ('needs_response', 'under_review'))
$$;

revoke all on function private.held_stars(uuid) from public, anon, authenticated;
grant execute on function private.held_stars(uuid) to service_role;
