"""supabase/seed.sql: demo users in every tier, Thai and English readings, payments and invites,
loaded through the project's SQL functions so the ledger audits clean; refused where it does
not belong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from ops.seed import SeedError, load_seed


@pytest.fixture(scope="module")
def seeded(database_factory: Any) -> Iterator[str]:
    url = database_factory(migrate=True)
    assert load_seed(url) == []
    yield url


def _rows(url: str, query: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(query).fetchall()


def test_the_seeded_ledger_audits_clean(seeded: str) -> None:
    assert _rows(seeded, "select * from public.wallet_audit()") == []
    balances = _rows(seeded, "select count(*) as n from public.wallet_transactions")
    assert balances[0]["n"] > 50


def test_there_are_demo_users_in_every_tier(seeded: str) -> None:
    tiers = {r["external_id"]: (r["tier"], r["total_invites"]) for r in _rows(
        seeded, "select external_id, tier::text, total_invites from public.users "
                "where external_id ~ '^demo-(gold|silver|bronze)-[0-9]$'")}
    assert tiers == {"demo-gold-1": ("gold", 16), "demo-gold-2": ("gold", 16),
                     "demo-silver-1": ("silver", 6), "demo-silver-2": ("silver", 6),
                     "demo-bronze-1": ("bronze", 1), "demo-bronze-2": ("bronze", 0)}


def test_readings_are_in_thai_and_english_and_complete(seeded: str) -> None:
    readings = _rows(seeded, "select question_locale, card_count, tarot_reading, cards "
                             "from public.tarot_readings")
    assert {r["question_locale"] for r in readings} == {"th", "en"}
    assert {r["card_count"] for r in readings} == {3, 5}
    for reading in readings:
        assert len(reading["tarot_reading"]["cards"]) == reading["card_count"]
        assert reading["tarot_reading"]["summary"] and reading["tarot_reading"]["advice"]
    jobs = _rows(seeded, "select status::text as status, count(*) as n from public.jobs group by 1")
    assert jobs == [{"status": "succeeded", "n": len(readings)}]


def test_payments_and_invites_have_the_states_an_app_shows(seeded: str) -> None:
    payments = {r["status"] for r in _rows(seeded, "select status::text from public.payments")}
    assert {"succeeded", "failed", "pending"} <= payments
    invites = {r["status"] for r in _rows(seeded, "select status::text from public.user_invites")}
    assert invites == {"accepted", "pending"}
    exchanged = _rows(seeded, "select count(*) as n from public.wallet_transactions "
                              "where dedupe_key like 'exchange:%'")
    assert exchanged[0]["n"] >= 1


def test_seeding_again_changes_nothing(seeded: str) -> None:
    before = _rows(seeded, "select count(*) as n from public.wallet_transactions")
    notices = load_seed(seeded)
    assert any("already" in notice for notice in notices)
    assert _rows(seeded, "select count(*) as n from public.wallet_transactions") == before


def _with_a_real_user(database_factory: Any) -> str:
    url = database_factory(migrate=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select public.upsert_user_from_identity('custom', 'someone-real', "
                     "'real@example.com', true, 'Real')")
        # The developer signed in as a demo user before seeding: the seed completes that user.
        conn.execute("select public.upsert_user_from_identity('custom', 'demo-gold-1', "
                     "'demo-gold-1@demo.mimivibe.test', true)")
    return url


def test_make_seed_also_seeds_a_local_database_the_developer_already_uses(
        database_factory: Any) -> None:
    url = _with_a_real_user(database_factory)
    load_seed(url)
    assert _rows(url, "select * from public.wallet_audit()") == []
    users = _rows(url, "select external_id, tier::text from public.users "
                       "where external_id in ('someone-real', 'demo-gold-1') order by 1")
    assert users == [{"external_id": "demo-gold-1", "tier": "gold"},
                     {"external_id": "someone-real", "tier": "bronze"}]


def test_the_seed_file_alone_refuses_a_database_with_users_and_leaves_it_untouched(
        database_factory: Any) -> None:
    url = _with_a_real_user(database_factory)
    seed = (Path(__file__).resolve().parents[2] / "supabase" / "seed.sql").read_text("utf-8")
    # As `psql -f` or the CLI would load it.
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.RaiseException,
                                                     match="make seed"):
        conn.execute(seed.encode())
    assert _rows(url, "select count(*) as n from public.users") == [{"n": 2}]
    assert _rows(url, "select count(*) as n from public.payments") == [{"n": 0}]


def test_a_database_elsewhere_is_refused() -> None:
    with pytest.raises(SeedError, match="this machine"):
        load_seed("postgresql://postgres@db.example.com:5432/postgres")
