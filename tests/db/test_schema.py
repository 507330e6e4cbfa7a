"""The data model's shape: prices seeded with the defaults of docs/DESIGN.md, and an index
(unique where the design needs uniqueness) behind every access path of the design document and
the flows."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

# (table, leading index keys, must be unique). Keys as pg_get_indexdef prints them.
ACCESS_PATHS = [
    ("users", ["lower(email)"], True),
    ("users", ["external_provider", "external_id"], True),
    ("users", ["invite_code"], True),
    ("users", ["invited_by"], False),
    ("user_identities", ["provider", "external_id"], True),
    ("user_identities", ["user_id"], False),
    ("stripe_customers", ["user_id"], True),
    ("stripe_customers", ["stripe_customer_id"], True),
    ("payments", ["user_id", "created_at"], False),
    ("payments", ["user_id", "idempotency_key"], True),
    ("payments", ["stripe_payment_intent_id"], True),
    ("payments", ["status"], False),
    ("wallet_transactions", ["user_id", "created_at"], False),
    ("wallet_transactions", ["user_id", "currency", "seq"], False),
    ("wallet_transactions", ["dedupe_key"], True),
    ("jobs", ["dedupe_key"], True),
    ("jobs", ["status", "created_at"], False),
    ("jobs", ["next_retry_at"], False),
    ("jobs", ["user_id", "created_at"], False),
    ("job_attempts", ["job_id", "attempt_number"], True),
    ("tarot_readings", ["user_id", "created_at"], False),
    ("tarot_readings", ["job_id"], True),
    ("user_payment_methods", ["user_id"], False),
    ("user_payment_methods", ["stripe_payment_method_id"], True),
    ("user_invites", ["inviter_id"], False),
    ("user_invites", ["invitee_id"], True),
    ("user_invites", ["invite_code"], False),
    ("user_invites", ["expires_at"], False),
    ("stripe_events", ["id"], True),
]


@pytest.mark.parametrize(("table", "keys", "unique"), ACCESS_PATHS)
def test_every_access_path_has_an_index(db, table, keys, unique):
    indexes = db.execute(
        "select i.indisunique as is_unique,"
        " array(select pg_get_indexdef(i.indexrelid, k, true)"
        "       from generate_series(1, i.indnkeyatts) k) as keys"
        " from pg_index i where i.indrelid = ('public.' || %s)::regclass",
        (table,),
    ).fetchall()
    matching = [i for i in indexes if i["keys"][: len(keys)] == keys]
    assert matching, f"no index on {table} ({', '.join(keys)})"
    if unique:
        assert any(i["is_unique"] and i["keys"] == keys for i in matching)


def test_thai_search_has_a_trigram_gin_index(db):
    row = db.execute(
        "select am.amname, pg_get_indexdef(i.indexrelid) as definition from pg_index i"
        " join pg_class c on c.oid = i.indexrelid join pg_am am on am.oid = c.relam"
        " where i.indrelid = 'public.tarot_readings'::regclass"
        " and pg_get_indexdef(i.indexrelid, 1, true) = 'question_normalized'"
    ).fetchone()
    assert row is not None
    assert row["amname"] == "gin"
    assert "gin_trgm_ops" in row["definition"]


def test_star_packages_are_seeded_with_the_design_defaults(db):
    rows = db.execute(
        "select code, amount_satang, currency, stars, bonus_stars, active"
        " from public.star_packages order by amount_satang"
    ).fetchall()
    assert [tuple(r.values()) for r in rows] == [
        ("starter", 4900, "THB", 5, 0, True),
        ("basic", 14900, "THB", 15, 2, True),
        ("premium", 29900, "THB", 30, 6, True),
    ]


def test_reading_costs_exchange_rate_and_invite_rules_are_seeded(db):
    costs = db.execute("select card_count, stars from public.reading_prices order by 1").fetchall()
    assert [(r["card_count"], r["stars"]) for r in costs] == [(3, 1), (5, 2)]
    settings = db.execute(
        "select coins_per_star, invite_reward_coins, invite_window_days, invite_expiry_days"
        " from public.pricing_settings"
    ).fetchall()
    assert [tuple(r.values()) for r in settings] == [(100, 100, 7, 30)]
    tiers = db.execute(
        "select tier::text, min_accepted_invites, multiplier from public.tier_bonuses order by 2"
    ).fetchall()
    assert [tuple(r.values()) for r in tiers] == [
        ("bronze", 0, Decimal("1.00")),
        ("silver", 6, Decimal("1.20")),
        ("gold", 16, Decimal("1.50")),
    ]


@pytest.mark.parametrize("key", ["true", "false"])
def test_pricing_settings_hold_exactly_one_row(db, key):
    with pytest.raises(psycopg.errors.IntegrityError):
        db.execute(
            "insert into public.pricing_settings"
            " (id, coins_per_star, invite_reward_coins, invite_window_days, invite_expiry_days)"
            f" values ({key}, 1, 1, 1, 1)"
        )
