"""Schema rules that an easy-looking schema gets wrong (docs/DESIGN.md, "Schema rules"):
search, invite codes, the ledger, policies and access checks, `updated_at`, card expiry, job
owners; one test each."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest

from tests.db.conftest import acting_as, apply_change, make_user, one


def _reading(db, user, question: str) -> uuid.UUID:
    return one(
        db,
        "insert into public.tarot_readings (user_id, question, card_count, cards, tarot_reading)"
        " values (%s, %s, 3, '[1,2,3]', '{}') returning id",
        (user, question),
    )["id"]


# 1. to_tsvector('thai', ...) does not exist: Thai search uses pg_trgm over a normalized copy.
def test_thai_questions_are_found_through_the_trigram_index(db):
    user = make_user(db)
    love = _reading(db, user, "ความรักของฉันจะเป็นอย่างไร")
    _reading(db, user, "การเงินเดือนหน้า")
    rows = db.execute(
        "select id from public.tarot_readings where user_id = %s"
        " and question_normalized ilike '%%' || private.normalize_question(%s) || '%%'",
        (user, "ความรัก"),
    ).fetchall()
    assert [r["id"] for r in rows] == [love]
    with db.transaction(force_rollback=True):
        db.execute("set local enable_seqscan = off")
        plan = "\n".join(
            r["QUERY PLAN"]
            for r in db.execute(
                "explain select id from public.tarot_readings"
                " where question_normalized ilike '%ความรัก%'"
            ).fetchall()
        )
    assert "tarot_readings_question_trgm_idx" in plan


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        ("ทํางานที่ใหม่", "ทำงาน"),  # nikhahit + sara aa stored, SARA AM typed
        ("แฟนจะกลับมาไหม", "เเฟน"),  # typed with sara e twice
        ("ความ\u200bรัก", "ความรัก"),  # zero-width space inside a word
        ("Will   I\u00a0PASS the exam", "i pass"),
    ],
)
def test_normalizer_folds_thai_spellings_space_and_case(db, stored, typed):
    row = one(
        db,
        "select private.normalize_question(%s) like '%%' || private.normalize_question(%s) || '%%' as hit",
        (stored, typed),
    )
    assert row["hit"] is True


# 2. A generated invite code with NOW() is invalid: a function default gives short, unique codes.
def test_invite_codes_are_short_unambiguous_and_unique(db):
    codes = [
        one(db, "select invite_code from public.users where id = %s", (make_user(db),))[
            "invite_code"
        ]
        for _ in range(50)
    ]
    assert all(re.fullmatch(r"[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}", c) for c in codes)
    assert len(set(codes)) == len(codes)
    generated = one(
        db,
        "select attgenerated from pg_attribute"
        " where attrelid = 'public.users'::regclass and attname = 'invite_code'",
    )["attgenerated"]
    assert generated == ""


# 3. wallet_transactions referenced tables created after it: the migrations are ordered.
def test_ledger_references_readings_invites_payments_and_jobs(db):
    targets = {
        r["target"]
        for r in db.execute(
            "select confrelid::regclass::text as target from pg_constraint"
            " where conrelid = 'public.wallet_transactions'::regclass and contype = 'f'"
        ).fetchall()
    }
    assert targets == {"users", "payments", "tarot_readings", "user_invites", "jobs"}


# 4. CHECK (amount >= 0) made debits impossible: amounts are signed and never zero.
def test_ledger_amounts_are_signed_and_never_zero(db):
    user = make_user(db, stars=3)
    debit = apply_change(db, user, "STAR", -1, "reading", f"reading:{uuid.uuid4()}")
    assert debit["amount"] == -1
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "insert into public.wallet_transactions"
            " (user_id, transaction_type, amount, currency, balance_after, dedupe_key)"
            " values (%s, 'refund', 0, 'STAR', 2, %s)",
            (user, f"zero:{uuid.uuid4()}"),
        )


# 5. Users could set their own balance and insert free readings; four tables had no policies.
def test_user_can_neither_raise_own_balance_nor_insert_a_reading(db):
    user = make_user(db)
    with acting_as(db, "authenticated", user):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), db.transaction():
            db.execute("update public.users set star_balance = 100 where id = %s", (user,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege), db.transaction():
            db.execute(
                "insert into public.tarot_readings (user_id, question, card_count, cards, tarot_reading)"
                " values (%s, 'free?', 3, '[1,2,3]', '{}')",
                (user,),
            )


def test_tables_that_had_rls_but_no_policies_have_select_policies(db):
    tables = {
        r["tablename"]
        for r in db.execute(
            "select tablename from pg_policies where schemaname = 'public' and cmd = 'SELECT'"
            " and roles = '{authenticated}'"
        ).fetchall()
    }
    assert {"jobs", "job_attempts", "user_payment_methods", "user_invites"} <= tables


# 6. user_can_access_reading compared user_id with itself; is_admin trusted a provider name.
def test_user_can_access_reading_checks_the_owner(db):
    owner, stranger = make_user(db), make_user(db)
    reading = _reading(db, owner, "งานใหม่")
    row = one(
        db,
        "select private.user_can_access_reading(%s, %s) as owner_ok,"
        " private.user_can_access_reading(%s, %s) as stranger_ok",
        (reading, owner, reading, stranger),
    )
    assert (row["owner_ok"], row["stranger_ok"]) == (True, False)


def test_a_user_calling_their_provider_admin_gains_nothing(db):
    assert db.execute("select 1 from pg_proc where proname = 'is_admin'").fetchall() == []
    admin = make_user(db, external_provider="admin")
    victim = make_user(db)
    _reading(db, victim, "เรื่องส่วนตัว")
    with acting_as(db, "authenticated", admin):
        assert (
            db.execute(
                "select 1 from public.tarot_readings where user_id = %s", (victim,)
            ).fetchall()
            == []
        )
        assert db.execute("select 1 from public.users where id = %s", (victim,)).fetchall() == []


# 7. record_wallet_transaction raced: see test_wallet_core's concurrency tests; here the
# sequential version of the race: a second debit sees the first one's balance.
def test_second_debit_sees_the_first(db):
    user = make_user(db, stars=1)
    apply_change(db, user, "STAR", -1, "reading", f"reading:{uuid.uuid4()}")
    with pytest.raises(psycopg.Error) as info:
        apply_change(db, user, "STAR", -1, "reading", f"reading:{uuid.uuid4()}")
    assert info.value.sqlstate == "MV001"


# 8. updated_at defaults were never refreshed: a trigger maintains them.
def test_updated_at_moves_on_update(db):
    user = make_user(db)
    before = one(db, "select updated_at from public.users where id = %s", (user,))["updated_at"]
    after = one(
        db,
        "update public.users set name = 'new' where id = %s returning updated_at",
        (user,),
    )["updated_at"]
    assert after > before


# 9. CHECK (exp_year > 2025) hard-coded a year.
def test_cards_expiring_this_year_or_in_2025_can_be_saved(db):
    user = make_user(db)
    year = one(db, "select extract(year from now())::int as y")["y"]
    for exp_year in {2025, year}:
        db.execute(
            "insert into public.user_payment_methods (user_id, stripe_payment_method_id, exp_month, exp_year)"
            " values (%s, %s, 12, %s)",
            (user, f"pm_{uuid.uuid4().hex}", exp_year),
        )


# 10. jobs had no owner.
def test_jobs_have_an_owner_that_rls_uses(db):
    owner, other = make_user(db), make_user(db)
    job = one(
        db,
        "insert into public.jobs (user_id, dedupe_key, payload) values (%s, %s, '{}') returning id",
        (owner, f"reading:{uuid.uuid4()}"),
    )["id"]
    with acting_as(db, "authenticated", owner):
        assert len(db.execute("select 1 from public.jobs where id = %s", (job,)).fetchall()) == 1
    with acting_as(db, "authenticated", other):
        assert db.execute("select 1 from public.jobs where id = %s", (job,)).fetchall() == []
    with pytest.raises(psycopg.errors.NotNullViolation):
        db.execute(
            "insert into public.jobs (dedupe_key, payload) values (%s, '{}')", (uuid.uuid4().hex,)
        )
