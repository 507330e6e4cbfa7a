"""Set-based fill of a migrated database for the data-scale benchmark.

`fill(conn, users)` writes `users` users with the shape of a live app, in a handful of
INSERT ... SELECT statements: every user has an identity, a ledger of `LEDGER_PER_USER` rows
(with a correct `balance_after` chain and cached balances, so `wallet_audit()` stays empty),
one reading job with its attempt and reading; 30% paid once and have a Stripe customer, 20% a
saved card, invites link later users to earlier ones (so no cycles). A small fraction of jobs
is open (queued and streamed, processing on a live lease, failed and not yet due) or
dead-lettered, in proportion to the users; the open ones are in flight (created minutes ago,
on the stream or leased), and stay so however long the fill and the runs take: retries due
in a day, leases of a day, queued jobs stamped as rung at the fill's end (with the 10-minute
retry and 5-minute lease they had, the large `--full` fill outlasted them and the sweep and
`queue_health` met 100x more due work). The first `POWER_USERS` users are heavy users,
identical at every size: 20,000 ledger rows, 2,000 readings and 1,000 / 500 invites sent.

Some work is due at every size in the same amount, so the consumer's sweep returns the same
rows at both sizes: `DUE_JOBS` queued jobs that never reached the stream, and `EXPIRED_INVITES`
pending invites past their expiry.

The mapping of user numbers to ids is kept in `bench.users` (this database is throwaway).
"""

from __future__ import annotations

from typing import Any

import psycopg

POWER_USERS = 2
POWER_LEDGER = 20_000
POWER_JOBS = 2_000
POWER_INVITES = (1_000, 500)
LEDGER_PER_USER = 8
DUE_JOBS = 150
EXPIRED_INVITES = 20


def _statements(users: int) -> list[str]:
    p = POWER_USERS
    first_ordinary_invitee = p + sum(POWER_INVITES) + 1
    power_ranges = []
    start = p + 1
    for n, count in enumerate(POWER_INVITES, start=1):
        power_ranges.append((n, start, start + count - 1))
        start += count
    inviter_case = " ".join(
        f"when u.i between {lo} and {hi} then {n}" for n, lo, hi in power_ranges
    )
    return [
        "create schema bench",
        # Eight characters of the invite alphabet from a bijection of the user number.
        """create function bench.code(n bigint) returns text language sql immutable as $$
             select string_agg(substr('23456789ABCDEFGHJKMNPQRSTUVWXYZ',
                      ((n / power(31, k)::bigint) % 31)::int + 1, 1), '' order by k)
               from generate_series(0, 7) k $$""",
        f"""create table bench.users as
              select i, gen_random_uuid() as id, i <= {p} as power
                from generate_series(1, {users}) i""",
        "create unique index on bench.users (i)",
        "create unique index on bench.users (id)",
        # Who invited whom: the power users' invitees first, then 30% of the others, each by an
        # earlier ordinary user.
        f"""create table bench.invites as
              select u.i as invitee,
                     case {inviter_case}
                          else {p} + 1 + ((u.i::bigint * 7919) % (u.i - {p} - 1))::int end
                       as inviter
                from bench.users u
               where u.i > {p} and (u.i < {first_ordinary_invitee} or u.i % 10 in (3, 4, 5))""",
        """insert into public.users (id, external_id, external_provider, email, name,
                                      invite_code, created_at, last_login_at)
            select u.id, 'bench-' || u.i, 'custom', 'u' || u.i || '@bench.test', 'User ' || u.i,
                   bench.code((u.i::bigint * 48271) % 852891037441),
                   now() - make_interval(days => 30 + u.i % 300), now() - interval '1 day'
              from bench.users u order by u.i""",
        """insert into public.user_identities (user_id, provider, external_id, email,
                                               email_verified)
           select u.id, 'custom', 'bench-' || u.i, 'u' || u.i || '@bench.test', true
             from bench.users u""",
        # Invites: power users' are mostly accepted (5% pending); others a third each.
        f"""insert into public.user_invites (inviter_id, invitee_id, invite_code, status,
                                             coin_reward, is_reward_claimed, created_at,
                                             accepted_at, expires_at)
            select r.id, e.id, r.code, s.status,
                   case when s.status = 'accepted' then 100 end, s.status = 'accepted',
                   now() - make_interval(days => 40, secs => v.invitee),
                   case when s.status = 'accepted' then now() - interval '20 days' end,
                   case when v.invitee <= {p} + {EXPIRED_INVITES} then now() - interval '1 hour'
                        when s.status = 'expired' then now() - interval '10 days'
                        else now() + interval '10 days' end
              from bench.invites v
              join bench.users e on e.i = v.invitee
              join lateral (select u.id, pu.invite_code as code from bench.users u
                              join public.users pu on pu.id = u.id where u.i = v.inviter) r
                on true
             cross join lateral (select (case
                 when v.invitee <= {p} + {EXPIRED_INVITES} then 'pending'
                 when v.inviter <= {p} then case when v.invitee % 20 = 0 then 'pending'
                                                 else 'accepted' end
                 else (array['accepted', 'pending', 'expired'])[v.invitee % 3 + 1]
               end)::public.invite_status as status) s
             order by v.invitee""",
        """update public.users u set invited_by = r.id
             from bench.invites v join bench.users e on e.i = v.invitee
             join bench.users r on r.i = v.inviter
            where u.id = e.id""",
        # Payments: 30% of users once, power users 200 times; Stripe customers and cards.
        """insert into public.payments (user_id, amount, status, package_type, stars_purchased,
                                         stripe_payment_intent_id, stripe_charge_id, created_at)
            select u.id, 4900, 'succeeded', 'starter', 5, 'pi_bench_' || u.i || '_' || n,
                   'ch_bench_' || u.i || '_' || n, now() - make_interval(days => n)
              from bench.users u
             cross join lateral generate_series(1, case when u.power then 200 else 1 end) n
             where u.power or u.i % 10 in (0, 1, 2)""",
        """insert into public.stripe_customers (user_id, stripe_customer_id)
           select distinct p.user_id, 'cus_bench_' || u.i
             from public.payments p join bench.users u on u.id = p.user_id""",
        """insert into public.user_payment_methods (user_id, stripe_payment_method_id,
                                                    stripe_customer_id, brand, last4, exp_month,
                                                    exp_year, is_default)
           select u.id, 'pm_bench_' || u.i, 'cus_bench_' || u.i, 'visa', '4242', 12, 2030, true
             from bench.users u where u.power or u.i % 10 in (0, 1)""",
        # Jobs: one per user (2,000 per power user); a few open or dead-lettered by user
        # number, the rest succeeded; then the due queued jobs, the same number at any size.
        f"""insert into public.jobs (user_id, dedupe_key, status, payload, cost_stars, attempts,
                                     worker_id, started_at, completed_at, next_retry_at,
                                     enqueued_at, created_at, last_error,
                                     visibility_timeout_secs)
            select u.id, 'create-reading:' || u.id || ':bench-' || n, s.status,
                   jsonb_build_object('question', 'ความรักของฉัน ' || n, 'locale', 'th',
                                      'card_count', 3, 'cards', '[]'::jsonb,
                                      'request_hash', 'bench'),
                   1, case when s.status = 'queued' then 0 else 1 end,
                   case when s.status = 'processing' then 'bench-worker' end,
                   case when s.status = 'queued' then null
                        when s.status = 'processing' then now() - interval '30 seconds'
                        else c.at + interval '2 seconds' end,
                   case when s.status in ('succeeded', 'dlq') then c.at + interval '5 seconds' end,
                   case when s.status = 'failed' then now() + interval '1 day' end,
                   case when s.status = 'queued' then now() - interval '1 minute' end,
                   case when s.status = 'queued' then now() - interval '2 minutes' else c.at end,
                   case when s.status in ('failed', 'dlq') then 'bench failure' end,
                   case when s.status = 'processing' then 86400 else 300 end
              from bench.users u
             cross join lateral generate_series(1, case when u.power then {POWER_JOBS} else 1 end) n
             cross join lateral (select now() - make_interval(hours => n, secs => u.i % 3600)
                                   as at) c
             cross join lateral (select (case when u.power then 'succeeded'
                 when u.i % 1000 < 5 then 'queued' when u.i % 1000 = 5 then 'processing'
                 when u.i % 1000 = 6 then 'failed' when u.i % 1000 < 12 then 'dlq'
                 else 'succeeded' end)::public.job_status as status) s
             order by u.i, n""",
        f"""insert into public.jobs (user_id, dedupe_key, status, payload, cost_stars,
                                     created_at)
            select u.id, 'create-reading:' || u.id || ':bench-due', 'queued',
                   jsonb_build_object('question', 'งานของฉัน', 'locale', 'th', 'card_count', 3,
                                      'cards', '[]'::jsonb, 'request_hash', 'bench'),
                   1, now() - interval '1 hour'
              from bench.users u where u.i between {p} + 1 and {p} + {DUE_JOBS}""",
        """insert into public.job_attempts (job_id, attempt_number, worker_id, started_at,
                                            finished_at, success, error, created_at)
           select j.id, 1, 'bench-worker', j.started_at,
                  case when j.status <> 'processing' then j.started_at + interval '3 seconds' end,
                  case when j.status = 'succeeded' then true
                       when j.status = 'processing' then null else false end,
                  j.last_error, j.started_at
             from public.jobs j where j.attempts > 0 order by j.started_at""",
        """insert into public.tarot_readings (user_id, job_id, question, question_locale,
                                              card_count, cards, tarot_reading, created_at)
           select j.user_id, j.id,
                  (array['ความรักของฉันจะเป็นอย่างไร', 'งานใหม่จะดีไหม', 'Will I find love',
                         'การเงินปีนี้', 'Should I move abroad'])[(hashtext(j.id::text) & 3) + 1]
                    || ' ' || (hashtext(j.id::text) & 1023),
                  'th', 3, '[{"card_id": 1}, {"card_id": 2}, {"card_id": 3}]'::jsonb,
                  '{"summary": "bench", "advice": "bench"}'::jsonb, j.completed_at
             from public.jobs j where j.status = 'succeeded' order by j.completed_at""",
        # The ledger: stars alternate +5 purchase / -1 reading; coins are the invite rewards.
        # balance_after is the running sum per user and currency in seq order.
        f"""insert into public.wallet_transactions (user_id, transaction_type, amount, currency,
                                                    balance_after, dedupe_key, created_at,
                                                    related_invite_id)
            select l.user_id, l.kind, l.amount, l.currency,
                   sum(l.amount) over (partition by l.user_id, l.currency order by l.ord),
                   l.dedupe_key, l.at, l.invite_id
              from (
                select u.id as user_id,
                       (case when n % 2 = 1 then 'purchase' else 'reading' end)
                         ::public.transaction_type as kind,
                       case when n % 2 = 1 then 5 else -1 end as amount,
                       'STAR'::public.currency as currency, n as ord,
                       'bench:' || u.i || ':' || n as dedupe_key,
                       now() - make_interval(hours => (case when u.power then {POWER_LEDGER}
                                                            else {LEDGER_PER_USER} end) - n,
                                             secs => u.i % 3600) as at,
                       null::uuid as invite_id
                  from bench.users u
                 cross join lateral generate_series(1, case when u.power then {POWER_LEDGER}
                                                            else {LEDGER_PER_USER} end) n
                union all
                select i.inviter_id, 'invite_reward', 100, 'COIN',
                       row_number() over (partition by i.inviter_id order by i.accepted_at, i.id),
                       'invite:' || i.id, i.accepted_at, i.id
                  from public.user_invites i where i.status = 'accepted'
              ) l
             order by l.user_id, l.currency, l.ord""",
        """update public.users u
              set star_balance = coalesce(s.stars, 0), coin_balance = coalesce(s.coins, 0),
                  total_invites = coalesce(a.accepted, 0),
                  tier = case when coalesce(a.accepted, 0) >= 16 then 'gold'
                              when coalesce(a.accepted, 0) >= 6 then 'silver'
                              else 'bronze' end::public.user_tier
             from bench.users b
             left join (select t.user_id,
                               sum(t.amount) filter (where t.currency = 'STAR') as stars,
                               sum(t.amount) filter (where t.currency = 'COIN') as coins
                          from public.wallet_transactions t group by t.user_id) s
               on s.user_id = b.id
             left join (select i.inviter_id, count(*) as accepted from public.user_invites i
                         where i.status = 'accepted' group by i.inviter_id) a
               on a.inviter_id = b.id
            where u.id = b.id""",
    ]


def fill(conn: psycopg.Connection[Any], users: int) -> None:
    """Fill a freshly migrated database (autocommit connection), then vacuum and analyse it."""
    if users < POWER_USERS + sum(POWER_INVITES) + DUE_JOBS:
        raise ValueError(f"at least {POWER_USERS + sum(POWER_INVITES) + DUE_JOBS} users")
    with conn.transaction():
        for statement in _statements(users):
            conn.execute(statement)
        # The fill is one transaction of several minutes at the larger sizes, so its in-flight
        # queued jobs were rung long before the runs begin: stamp them as rung a minute before
        # its end, or the sweep would meet them all as rung and never claimed.
        conn.execute("update public.jobs set enqueued_at = clock_timestamp() - interval '1 minute'"
                     " where status = 'queued' and enqueued_at is not null")
    conn.execute("vacuum (analyze)")


def user_number(conn: psycopg.Connection[Any], i: int) -> Any:
    """The id of user number `i`."""
    row = conn.execute("select id from bench.users where i = %s", (i,)).fetchone()
    assert row is not None
    return row[0]
