"""The gateway driven by @supabase/supabase-js (Node) through a dozen app screens of MimiVibe on
the product's migrated schema, each result compared with the same query in SQL run as the same
user (role `authenticated` with the user's claims, so the same RLS applies)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devstack.gateway import GatewaySettings, create_app
from devstack.serve import ServerThread
from tests.devstack.conftest import GW_SECRET, login_url, mint

SCRIPT = Path(__file__).parent / "supabase_js" / "app_screens.mjs"
ROOT = Path(__file__).resolve().parents[2]

ALICE = "00000000-0000-4000-8000-0000000000a1"
BOB = "00000000-0000-4000-8000-0000000000b2"
CAROL = "00000000-0000-4000-8000-0000000000c3"
P1, P2, P3 = ("10000000-0000-4000-8000-000000000001", "10000000-0000-4000-8000-000000000002",
              "10000000-0000-4000-8000-000000000003")
J1, J2 = "20000000-0000-4000-8000-000000000001", "20000000-0000-4000-8000-000000000002"
R1, R2, R3 = ("30000000-0000-4000-8000-000000000001", "30000000-0000-4000-8000-000000000002",
              "30000000-0000-4000-8000-000000000003")
I1, I2 = "40000000-0000-4000-8000-000000000001", "40000000-0000-4000-8000-000000000002"

SEED = f"""
insert into public.users (id, external_id, external_provider, name, created_at, invited_by) values
  ('{ALICE}', 'alice', 'custom', 'Alice', '2026-01-01', null),
  ('{BOB}', 'bob', 'custom', 'Bob', '2026-01-02', '{ALICE}'),
  ('{CAROL}', 'carol', 'custom', 'Carol', '2026-01-03', '{ALICE}');
insert into public.payments (id, user_id, amount, status, package_type, stars_purchased,
                             stars_bonus, created_at) values
  ('{P1}', '{ALICE}', 4900, 'succeeded', 'starter', 5, 0, '2026-01-01 10:00Z'),
  ('{P2}', '{ALICE}', 14900, 'pending', 'basic', 15, 2, '2026-01-05 10:00Z'),
  ('{P3}', '{BOB}', 4900, 'succeeded', 'starter', 5, 0, '2026-01-02 10:00Z');
insert into public.jobs (id, user_id, dedupe_key, status, payload, created_at, completed_at) values
  ('{J1}', '{ALICE}', 'reading:j1', 'succeeded', '{{}}', '2026-01-02 10:00Z',
   '2026-01-02 10:01Z'),
  ('{J2}', '{ALICE}', 'reading:j2', 'queued', '{{}}', '2026-01-06 10:00Z', null);
insert into public.tarot_readings (id, user_id, job_id, question, card_count, cards,
                                   tarot_reading, created_at) values
  ('{R1}', '{ALICE}', '{J1}', 'ความรักของฉันจะเป็นอย่างไร', 3, '[1,2,3]', '{{}}',
   '2026-01-02 10:01Z'),
  ('{R2}', '{ALICE}', null, 'งานใหม่กับความรัก', 5, '[1,2,3,4,5]', '{{}}', '2026-01-03 10:00Z'),
  ('{R3}', '{BOB}', null, 'ความรักของบ็อบ', 5, '[1,2,3,4,5]', '{{}}', '2026-01-04 10:00Z');
insert into public.user_invites (id, inviter_id, invitee_id, invite_code, coin_reward,
                                 is_reward_claimed, status, accepted_at, created_at) values
  ('{I1}', '{ALICE}', '{BOB}', (select invite_code from public.users where id = '{ALICE}'),
   100, true, 'accepted', '2026-01-04 10:00Z', '2026-01-02 11:00Z'),
  ('{I2}', '{ALICE}', '{CAROL}', (select invite_code from public.users where id = '{ALICE}'),
   null, false, 'pending', null, '2026-01-03 11:00Z');
insert into public.wallet_transactions (user_id, transaction_type, amount, currency,
  balance_after, dedupe_key, related_payment_id, related_reading_id, related_invite_id,
  related_job_id, created_at) values
  ('{ALICE}', 'purchase', 5, 'STAR', 5, 'purchase:{P1}', '{P1}', null, null, null,
   '2026-01-01 10:00Z'),
  ('{ALICE}', 'reading', -1, 'STAR', 4, 'reading:{J1}', null, '{R1}', null, '{J1}',
   '2026-01-02 10:00Z'),
  ('{ALICE}', 'reading', -2, 'STAR', 2, 'reading:{R2}', null, '{R2}', null, null,
   '2026-01-03 10:00Z'),
  ('{ALICE}', 'invite_reward', 100, 'COIN', 100, 'invite:{I1}', null, null, '{I1}', null,
   '2026-01-04 10:00Z'),
  ('{BOB}', 'purchase', 5, 'STAR', 5, 'purchase:{P3}', '{P3}', null, null, null,
   '2026-01-02 10:00Z');
update public.users set star_balance = 2, coin_balance = 100 where id = '{ALICE}';
update public.users set star_balance = 5 where id = '{BOB}';
"""

# Each screen's rows in SQL (the `data` supabase-js must return), as the screen's user.
EXPECTED_ROWS = {
    "wallet_history": (ALICE, """
        select w.id, w.amount, w.currency, w.transaction_type,
               (select row_to_json(p) from (select status, amount, package_type
                  from public.payments where id = w.related_payment_id) p) as payments
          from public.wallet_transactions w order by w.created_at desc"""),
    "wallet_page_with_count": (ALICE, """
        select id, amount from public.wallet_transactions order by created_at
         limit 2 offset 1"""),
    "readings_with_jobs": (ALICE, """
        select r.id, r.question, r.card_count,
               (select row_to_json(j) from (select status, completed_at from public.jobs
                 where id = r.job_id) j) as jobs
          from public.tarot_readings r order by r.created_at"""),
    "jobs_with_their_reading": (ALICE, """
        select j.id, j.status,
               (select row_to_json(r) from (select question from public.tarot_readings
                 where job_id = j.id) r) as tarot_readings
          from public.jobs j order by j.created_at"""),
    "invites_sent_with_invitee_profiles": (ALICE, """
        select i.status, i.coin_reward,
               (select row_to_json(u) from (select name from public.users
                 where id = i.invitee_id) u) as invitee
          from public.user_invites i order by i.created_at"""),
    "invite_received": (BOB, """
        select i.status,
               (select row_to_json(u) from (select name from public.users
                 where id = i.inviter_id) u) as inviter,
               (select row_to_json(u) from (select name from public.users
                 where id = i.invitee_id) u) as invitee
          from public.user_invites i"""),
    "paid_purchases_only": (ALICE, """
        select w.id, w.amount, json_build_object('status', p.status) as payments
          from public.wallet_transactions w join public.payments p on p.id = w.related_payment_id
         where p.status = 'succeeded' order by w.created_at"""),
    "search_then_filter": (ALICE, """
        select id, question, card_count from public.search_readings('ความรัก')
         where card_count = 5"""),
    "readings_with_job_status_spread": (ALICE, """
        select r.id, j.status as job_status from public.tarot_readings r
          left join public.jobs j on j.id = r.job_id order by r.created_at"""),
    "ledger_rows_without_payment": (ALICE, """
        select w.id, w.transaction_type, null::json as payments
          from public.wallet_transactions w
         where not exists (select 1 from public.payments p where p.id = w.related_payment_id)
         order by w.created_at"""),
    "latest_reading": (ALICE, """
        select u.name, coalesce((select json_agg(r) from (select question
          from public.tarot_readings where user_id = u.id order by created_at desc limit 1) r),
          '[]') as tarot_readings from public.users u"""),
}

EXPECTED_VALUES = {  # one JSON value each
    "profile_with_history": (ALICE, """
        select json_build_object('name', u.name, 'tier', u.tier,
          'tarot_readings', (select json_agg(r) from (select question, card_count
             from public.tarot_readings where user_id = u.id order by created_at) r),
          'payments', (select json_agg(p) from (select status from public.payments
             where user_id = u.id order by created_at) p))
          from public.users u"""),
    "wallet_summary": (ALICE, "select public.wallet_summary()"),
    "edit_profile_picture": (ALICE, """
        select json_build_object('picture_url', u.picture_url, 'tarot_readings',
          (select json_agg(r) from (select card_count from public.tarot_readings
             where user_id = u.id order by created_at) r))
          from public.users u"""),
    "payment_with_ledger": (ALICE, f"""
        select json_build_object('id', p.id, 'status', p.status, 'wallet_transactions',
          coalesce((select json_agg(w) from (select amount, transaction_type
             from public.wallet_transactions where related_payment_id = p.id) w), '[]'))
          from public.payments p where p.id = '{P1}'"""),
    "search_count_only": (ALICE, "select count(*) from public.search_readings('ความรัก')"),
    "wallet_count": (ALICE, "select count(*) from public.wallet_transactions"),
    "export_wallet_csv": (ALICE, """
        select 'transaction_type,amount,currency' || chr(10) || string_agg(
          transaction_type || ',' || amount || ',' || currency, chr(10) order by created_at)
          from public.wallet_transactions"""),
}


def as_user(conn: psycopg.Connection[Any], user: str, query: str) -> Any:
    """The query's single value, run as `authenticated` with the user's claims (then undone)."""
    with conn.transaction(force_rollback=True):
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true)",
                     (json.dumps({"sub": user, "role": "authenticated"}),))
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture(scope="module")
def screens(database_factory: Any) -> Iterator[tuple[dict[str, Any], str]]:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed (CI installs it)"
    assert (ROOT / "node_modules" / "@supabase" / "supabase-js").is_dir(), "run npm ci first"
    url = database_factory(migrate=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED)
    settings = GatewaySettings(database_url=login_url(url, "authenticator"),
                               jwt_secret=GW_SECRET, pool_max=2)
    with ServerThread(create_app(settings), name="gateway-supabase-js") as server:
        config = {"url": server.url, "anonKey": mint(role="anon", sub=None),
                  "tokens": {"alice": mint(sub=ALICE), "bob": mint(sub=BOB)},
                  "ids": {"payment": P1, "alice": ALICE}}
        done = subprocess.run([node, str(SCRIPT)], input=json.dumps(config), text=True,
                              capture_output=True, timeout=120, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    yield json.loads(done.stdout), url


@pytest.mark.parametrize("screen", sorted(EXPECTED_ROWS))
def test_screen_rows_match_the_same_query_in_sql(screens: tuple[dict[str, Any], str],
                                                 screen: str) -> None:
    results, url = screens
    user, query = EXPECTED_ROWS[screen]
    with psycopg.connect(url) as conn:
        expected = as_user(conn, user, f"select coalesce(json_agg(q), '[]') from ({query}) q")
    got = results[screen]
    assert got["error"] is None, got["error"]
    assert got["data"] == expected
    assert got["data"], "every screen's fixture returns rows"


@pytest.mark.parametrize("screen", ["profile_with_history", "wallet_summary",
                                    "payment_with_ledger", "edit_profile_picture"])
def test_single_value_screens_match_sql(screens: tuple[dict[str, Any], str], screen: str
                                        ) -> None:
    results, url = screens
    user, query = EXPECTED_VALUES[screen]
    with psycopg.connect(url) as conn:
        expected = as_user(conn, user, query)
    assert results[screen]["error"] is None, results[screen]["error"]
    assert results[screen]["data"] == expected
    if screen == "edit_profile_picture":  # the write went through, read back with its embed
        assert expected["picture_url"] == "https://example.com/alice.png"


def test_counts_and_csv_export_match_sql(screens: tuple[dict[str, Any], str]) -> None:
    results, url = screens
    with psycopg.connect(url) as conn:
        search_count = as_user(conn, *EXPECTED_VALUES["search_count_only"])
        wallet_count = as_user(conn, *EXPECTED_VALUES["wallet_count"])
        csv = as_user(conn, *EXPECTED_VALUES["export_wallet_csv"])
    assert results["search_count_only"]["count"] == search_count == 2
    assert results["search_count_only"]["data"] is None
    assert results["wallet_page_with_count"]["count"] == wallet_count == 4
    assert results["export_wallet_csv"]["data"] == csv


def test_ambiguous_embed_reaches_the_app_as_pgrst201(screens: tuple[dict[str, Any], str]
                                                     ) -> None:
    results, _ = screens
    ambiguous = results["ambiguous_invite_embed"]
    assert ambiguous["status"] == 300
    assert ambiguous["error"]["code"] == "PGRST201"
    assert len(ambiguous["error"]["details"]) == 3  # inviter, invitee and invite code keys
