"""RLS and grants as docs/API.md's REST surface, exercised the way PostgREST runs a request:
`set_config('role', ...)` and `request.jwt.claims` local to one transaction.

Every allowed case sits next to its denied twin: user A sees A's row and not B's; anon sees
nothing; nobody but the service side writes anything except a user's own name and picture.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.db.conftest import acting_as, apply_change, connect, make_user

# Tables a user reads their own rows of, with the column that identifies a fixture row.
OWN_ROW_TABLES = [
    ("users", "id"),
    ("user_identities", "id"),
    ("stripe_customers", "user_id"),
    ("payments", "id"),
    ("payment_refunds", "id"),
    ("payment_disputes", "id"),
    ("wallet_transactions", "id"),
    ("tarot_readings", "id"),
    ("jobs", "id"),
    ("job_attempts", "id"),
    ("user_payment_methods", "id"),
    ("user_invites", "id"),
]
SERVICE_ONLY_TABLES = [
    "stripe_events",
    "star_packages",
    "reading_prices",
    "pricing_settings",
    "tier_bonuses",
]
ALL_TABLES = [t for t, _ in OWN_ROW_TABLES] + SERVICE_ONLY_TABLES


@dataclass
class Tenant:
    user_id: uuid.UUID
    rows: dict[str, uuid.UUID]


def _one(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row["id"] if "id" in row else next(iter(row.values()))


def _make_tenant(conn: psycopg.Connection[Any]) -> Tenant:
    user = make_user(conn, email=f"{uuid.uuid4().hex}@example.com")
    tag = uuid.uuid4().hex
    rows: dict[str, uuid.UUID] = {"users": user, "stripe_customers": user}
    rows["user_identities"] = _one(
        conn,
        "insert into public.user_identities (user_id, provider, external_id) values (%s, 'clerk', %s)"
        " returning id",
        (user, tag),
    )
    conn.execute(
        "insert into public.stripe_customers (user_id, stripe_customer_id) values (%s, %s)",
        (user, f"cus_{tag}"),
    )
    rows["payments"] = _one(
        conn,
        "insert into public.payments (user_id, amount, package_type, stars_purchased, stars_bonus,"
        " stripe_payment_intent_id) values (%s, 14900, 'basic', 15, 2, %s) returning id",
        (user, f"pi_{tag}"),
    )
    rows["payment_refunds"] = _one(
        conn,
        "insert into public.payment_refunds (payment_id, stripe_refund_id, amount, status)"
        " values (%s, %s, 100, 'pending') returning id",
        (rows["payments"], f"re_{tag}"),
    )
    rows["payment_disputes"] = _one(
        conn,
        "insert into public.payment_disputes (payment_id, stripe_dispute_id, amount, status)"
        " values (%s, %s, 100, 'needs_response') returning id",
        (rows["payments"], f"dp_{tag}"),
    )
    rows["jobs"] = _one(
        conn,
        "insert into public.jobs (user_id, dedupe_key, payload, cost_stars)"
        " values (%s, %s, '{}'::jsonb, 1) returning id",
        (user, f"reading:{tag}"),
    )
    rows["job_attempts"] = _one(
        conn,
        "insert into public.job_attempts (job_id, attempt_number) values (%s, 1) returning id",
        (rows["jobs"],),
    )
    rows["tarot_readings"] = _one(
        conn,
        "insert into public.tarot_readings (user_id, job_id, question, card_count, cards, tarot_reading)"
        " values (%s, %s, 'ความรักจะเป็นอย่างไร', 3, '[1,2,3]'::jsonb, '{}'::jsonb) returning id",
        (user, rows["jobs"]),
    )
    rows["user_payment_methods"] = _one(
        conn,
        "insert into public.user_payment_methods (user_id, stripe_payment_method_id, last4)"
        " values (%s, %s, '4242') returning id",
        (user, f"pm_{tag}"),
    )
    rows["wallet_transactions"] = apply_change(
        conn, user, "STAR", 17, "purchase", f"purchase:{rows['payments']}"
    )["id"]
    return Tenant(user, rows)


def _invite(conn: psycopg.Connection[Any], inviter: uuid.UUID, invitee: uuid.UUID) -> uuid.UUID:
    return _one(
        conn,
        "insert into public.user_invites (inviter_id, invitee_id, invite_code)"
        " select %s, %s, invite_code from public.users where id = %s returning id",
        (inviter, invitee, inviter),
    )


@pytest.fixture(scope="module")
def tenants(migrated_db: str) -> tuple[Tenant, Tenant, dict[str, uuid.UUID]]:
    with connect(migrated_db, row_factory=dict_row) as conn:
        a, b = _make_tenant(conn), _make_tenant(conn)
        friend_of_a, friend_of_b = make_user(conn), make_user(conn)
        a.rows["user_invites"] = _invite(conn, a.user_id, friend_of_a)
        b.rows["user_invites"] = _invite(conn, b.user_id, friend_of_b)
        # Invites in which A and B are the invitee.
        sponsor_a, sponsor_b = make_user(conn), make_user(conn)
        extra = {
            "a_as_invitee": _invite(conn, sponsor_a, a.user_id),
            "b_as_invitee": _invite(conn, sponsor_b, b.user_id),
        }
    return a, b, extra


@pytest.fixture
def conn(migrated_db: str):
    with connect(migrated_db, row_factory=dict_row) as c:
        yield c


def _visible(
    conn: psycopg.Connection[Any], table: str, key: str, ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    rows = conn.execute(
        f"select {key} as k from public.{table} where {key} = any(%s)", (ids,)
    ).fetchall()
    return {r["k"] for r in rows}


def _denied(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()) -> bool:
    try:
        with conn.transaction():
            conn.execute(sql, params)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


@pytest.mark.parametrize(("table", "key"), OWN_ROW_TABLES)
def test_user_reads_own_row_but_not_another_users(conn, tenants, table, key):
    a, b, _ = tenants
    with acting_as(conn, "authenticated", a.user_id):
        assert _visible(conn, table, key, [a.rows[table], b.rows[table]]) == {a.rows[table]}
    with acting_as(conn, "authenticated", b.user_id):
        assert _visible(conn, table, key, [a.rows[table], b.rows[table]]) == {b.rows[table]}


def test_user_reads_invites_as_inviter_and_as_invitee_only(conn, tenants):
    a, b, extra = tenants
    ids = [
        a.rows["user_invites"],
        extra["a_as_invitee"],
        b.rows["user_invites"],
        extra["b_as_invitee"],
    ]
    with acting_as(conn, "authenticated", a.user_id):
        assert _visible(conn, "user_invites", "id", ids) == {
            a.rows["user_invites"],
            extra["a_as_invitee"],
        }


def _attempts_of_own_jobs(conn: psycopg.Connection[Any], user: uuid.UUID) -> set[uuid.UUID]:
    """The rows the job_attempts policy must show: attempts of the user's own jobs."""
    rows = conn.execute(
        "select a.id from public.job_attempts a join public.jobs j on j.id = a.job_id"
        " where j.user_id = %s", (user,)).fetchall()
    return {r["id"] for r in rows}


def _visible_attempts(conn: psycopg.Connection[Any], user: uuid.UUID) -> set[uuid.UUID]:
    with acting_as(conn, "authenticated", user):
        return {r["id"] for r in conn.execute("select id from public.job_attempts").fetchall()}


def test_user_reads_exactly_the_attempts_of_own_jobs(conn, tenants):
    a, b, _ = tenants
    for tenant in (a, b):
        assert _visible_attempts(conn, tenant.user_id) == _attempts_of_own_jobs(conn, tenant.user_id)
        assert tenant.rows["job_attempts"] in _visible_attempts(conn, tenant.user_id)


def test_an_attempt_belongs_to_its_jobs_owner_whatever_its_insert_says(conn, tenants):
    a, b, _ = tenants
    with conn.transaction(force_rollback=True):
        attempt = _one(
            conn,
            "insert into public.job_attempts (job_id, attempt_number, user_id)"
            " values (%s, 2, %s) returning id", (a.rows["jobs"], b.user_id))
        assert attempt in _visible_attempts(conn, a.user_id)
        assert attempt not in _visible_attempts(conn, b.user_id)
        conn.execute("update public.job_attempts set user_id = %s where id = %s",
                     (b.user_id, attempt))
        assert attempt not in _visible_attempts(conn, b.user_id)


def test_attempts_follow_their_job_to_another_owner(conn, tenants):
    a, b, _ = tenants
    with conn.transaction(force_rollback=True):
        conn.execute("update public.jobs set user_id = %s where id = %s",
                     (b.user_id, a.rows["jobs"]))
        assert a.rows["job_attempts"] in _visible_attempts(conn, b.user_id)
        assert a.rows["job_attempts"] not in _visible_attempts(conn, a.user_id)
        for tenant in (a, b):
            assert _visible_attempts(conn, tenant.user_id) == _attempts_of_own_jobs(
                conn, tenant.user_id)


@pytest.mark.parametrize("table", ALL_TABLES)
def test_anon_reads_nothing_while_service_role_reads_everything(conn, tenants, table):
    with acting_as(conn, "anon"):
        assert _denied(conn, f"select * from public.{table} limit 1")
    with acting_as(conn, "service_role"):
        assert not _denied(conn, f"select * from public.{table} limit 1")


@pytest.mark.parametrize("table", SERVICE_ONLY_TABLES)
def test_user_cannot_read_service_only_tables(conn, tenants, table):
    a, _, _ = tenants
    with acting_as(conn, "authenticated", a.user_id):
        assert _denied(conn, f"select * from public.{table} limit 1")


@pytest.mark.parametrize("role", ["authenticated", "anon"])
@pytest.mark.parametrize("table", ALL_TABLES)
def test_api_roles_cannot_insert_or_delete(conn, tenants, role, table):
    a, _, _ = tenants
    with acting_as(conn, role, a.user_id if role == "authenticated" else None):
        assert _denied(conn, f"insert into public.{table} default values")
        assert _denied(conn, f"delete from public.{table}")


@pytest.mark.parametrize("table", [t for t in ALL_TABLES if t != "users"])
def test_user_cannot_update_any_table_but_users(conn, tenants, table):
    a, _, _ = tenants
    with acting_as(conn, "authenticated", a.user_id):
        assert _denied(conn, f"update public.{table} set created_at = now()")


@pytest.mark.parametrize("table", ALL_TABLES)
def test_anon_cannot_update_any_table(conn, tenants, table):
    with acting_as(conn, "anon"):
        assert _denied(conn, f"update public.{table} set created_at = now()")


def test_user_updates_own_name_and_picture_but_not_another_users(conn, tenants):
    a, b, _ = tenants
    with acting_as(conn, "authenticated", a.user_id):
        own = conn.execute(
            "update public.users set name = 'แพร', picture_url = 'https://img.example/p.png'"
            " where id = %s returning name",
            (a.user_id,),
        ).fetchall()
        other = conn.execute(
            "update public.users set name = 'x' where id = %s returning name", (b.user_id,)
        ).fetchall()
    assert [r["name"] for r in own] == ["แพร"]
    assert other == []


@pytest.mark.parametrize(
    "assignment",
    [
        "star_balance = star_balance + 1000",
        "coin_balance = 1000000",
        "tier = 'gold'",
        "total_invites = 99",
        "invite_code = 'ABCDEFGH'",
        "invited_by = null",
        "email = 'someone@example.com'",
        "id = gen_random_uuid()",
    ],
)
def test_user_cannot_raise_balance_tier_or_change_other_columns(conn, tenants, assignment):
    a, _, _ = tenants
    with acting_as(conn, "authenticated", a.user_id):
        assert _denied(conn, f"update public.users set {assignment} where id = %s", (a.user_id,))
    row = conn.execute(
        "select star_balance, coin_balance, tier::text from public.users where id = %s",
        (a.user_id,),
    ).fetchone()
    assert (row["star_balance"], row["coin_balance"], row["tier"]) == (17, 0, "bronze")


def test_anon_cannot_update_users_even_with_a_sub_claim(conn, tenants):
    a, _, _ = tenants
    with conn.transaction(force_rollback=True):
        conn.execute("select set_config('role', 'anon', true)")
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (json.dumps({"role": "anon", "sub": str(a.user_id)}),),
        )
        assert _denied(conn, "update public.users set name = 'x' where id = %s", (a.user_id,))


def test_service_role_cannot_write_balances_or_ledger_directly(conn, tenants):
    a, _, _ = tenants
    with acting_as(conn, "service_role"):
        assert _denied(conn, "update public.users set star_balance = 1 where id = %s", (a.user_id,))
        assert _denied(conn, "update public.users set tier = 'gold' where id = %s", (a.user_id,))
        assert _denied(
            conn,
            "insert into public.wallet_transactions (user_id, transaction_type, amount, currency,"
            " balance_after, dedupe_key) values (%s, 'purchase', 1, 'STAR', 18, 'forged')",
            (a.user_id,),
        )
        assert not _denied(
            conn, "update public.users set last_login_at = now() where id = %s", (a.user_id,)
        )


def test_service_role_can_create_users_readings_and_invites_with_their_defaults(conn):
    with acting_as(conn, "service_role"):
        user = conn.execute(
            "insert into public.users (external_id, external_provider) values (%s, 'clerk')"
            " returning id, invite_code",
            (uuid.uuid4().hex,),
        ).fetchone()
        other = conn.execute(
            "insert into public.users (external_id, external_provider) values (%s, 'clerk') returning id",
            (uuid.uuid4().hex,),
        ).fetchone()
        job = conn.execute(
            "insert into public.jobs (user_id, dedupe_key, payload) values (%s, %s, '{}') returning id",
            (user["id"], uuid.uuid4().hex),
        ).fetchone()
        reading = conn.execute(
            "insert into public.tarot_readings (user_id, job_id, question, card_count, cards, tarot_reading)"
            " values (%s, %s, ' Love? ', 3, '[1,2,3]', '{}') returning question_normalized",
            (user["id"], job["id"]),
        ).fetchone()
        invite = conn.execute(
            "insert into public.user_invites (inviter_id, invitee_id, invite_code)"
            " values (%s, %s, %s) returning expires_at - created_at as ttl",
            (user["id"], other["id"], user["invite_code"]),
        ).fetchone()
    assert len(user["invite_code"]) == 8
    assert reading["question_normalized"] == "love?"
    assert invite["ttl"].days == 30
