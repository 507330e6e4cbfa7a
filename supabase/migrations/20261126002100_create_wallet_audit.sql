-- wallet_audit(): every discrepancy between cached balances, ledger sums and the balance_after
-- chain, one row per user, currency and problem. No rows means the wallets are healthy.

create function public.wallet_audit()
returns table (
  user_id uuid,
  currency public.currency,
  cached_balance bigint,
  ledger_sum bigint,
  last_balance_after bigint,
  problem text
)
language sql
stable
set search_path = ''
as $$
  with wallets as (
    select u.id as user_id, c.currency,
           case c.currency when 'STAR' then u.star_balance else u.coin_balance end as cached
      from public.users u
     cross join (values ('STAR'::public.currency), ('COIN'::public.currency)) as c (currency)
  ),
  chain as (
    select t.user_id, t.currency, t.amount, t.balance_after, t.seq,
           coalesce(lag(t.balance_after) over w, 0) + t.amount as expected_after,
           row_number() over (partition by t.user_id, t.currency order by t.seq desc) as from_last
      from public.wallet_transactions t
    window w as (partition by t.user_id, t.currency order by t.seq)
  ),
  ledgers as (
    select c.user_id, c.currency,
           sum(c.amount)::bigint as total,
           max(c.balance_after) filter (where c.from_last = 1) as last_after,
           count(*) filter (where c.balance_after <> c.expected_after) as broken_links
      from chain c
     group by c.user_id, c.currency
  )
  select w.user_id, w.currency, w.cached, coalesce(l.total, 0), l.last_after, p.problem
    from wallets w
    left join ledgers l on l.user_id = w.user_id and l.currency = w.currency
   cross join lateral (values
     (w.cached < 0, 'negative_balance'),
     (w.cached <> coalesce(l.total, 0), 'cached_balance_differs_from_ledger_sum'),
     (l.last_after is not null and l.last_after <> w.cached,
        'cached_balance_differs_from_last_balance_after'),
     (coalesce(l.broken_links, 0) > 0, 'broken_balance_after_chain')
   ) as p (failed, problem)
   where p.failed
   order by w.user_id, w.currency, p.problem
$$;

revoke all on function public.wallet_audit() from public, anon, authenticated;
grant execute on function public.wallet_audit() to service_role;
