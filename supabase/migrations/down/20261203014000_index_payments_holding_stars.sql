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
     and exists (select 1 from public.payment_disputes d
                  where d.payment_id = p.id and d.status in ('needs_response', 'under_review'))
$$;

drop index public.payments_user_stars_held_idx;
