"""Tenancy end to end: real access tokens from /session against the REST gateway under RLS.

User A's token reads nothing of user B's in any table of docs/API.md, cannot change B's rows, cannot
reach B's data through an RPC; anonymous requests see nothing; a user may change their own
name and picture but never balances, tier or invite data. Effects are checked in the database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
import pytest

from tests.identity.sql import first_row, scalar
from tests.identity.stack import Stack, api_key

TABLES = ["users", "wallet_transactions", "payments", "user_payment_methods", "tarot_readings",
          "jobs", "job_attempts", "user_invites", "stripe_customers", "user_identities"]
PROTECTED_USER_COLUMNS = {
    "star_balance": 1000, "coin_balance": 1000, "tier": "gold", "total_invites": 99,
    "invited_by": None, "invite_code": "ZZZZZZZZ", "email": "taken@example.test",
    "external_id": "stolen", "external_provider": "custom",
}


@dataclass
class Tenant:
    id: str
    token: str
    invite_code: str
    rows: dict[str, str]  # table → id of a row the tenant owns (or can see)


# Every RPC of docs/API.md, with arguments that would act on data if the caller were let through.
def _rpc_calls(tenant: Tenant) -> dict[str, dict[str, object]]:
    return {
        "exchange_coins": {"coins": 100, "idempotency_key": uuid.uuid4().hex},
        "search_readings": {"query": "ความรัก"},
        "reading_status": {"job_id": tenant.rows["jobs"]},
        "set_default_payment_method": {"payment_method_id": tenant.rows["user_payment_methods"]},
        "wallet_summary": {},
    }


def _seed(conn: psycopg.Connection, user_id: str) -> dict[str, str]:
    """One row per table for `user_id`, written as the superuser (the way SQL functions do)."""
    rows: dict[str, str] = {"users": user_id}
    payment = scalar(conn,
        "insert into public.payments (user_id, amount, package_type, stars_purchased)"
        " values (%s, 4900, 'starter', 5) returning id", (user_id,))
    rows["payments"] = str(payment)
    ledger = first_row(conn,
        "select (private.apply_wallet_change(%s, 'STAR', 5, 'purchase', %s,"
        " p_related_payment_id => %s)).id", (user_id, f"purchase:{payment}", payment))
    conn.execute(
        "select private.apply_wallet_change(%s, 'COIN', 300, 'invite_reward', %s)",
        (user_id, f"invite:{uuid.uuid4()}"))
    rows["wallet_transactions"] = str(ledger[0])
    job = scalar(conn,
        "insert into public.jobs (user_id, dedupe_key, payload, status)"
        " values (%s, %s, '{\"question\": \"q\"}', 'succeeded') returning id",
        (user_id, f"reading:{uuid.uuid4()}"))
    rows["jobs"] = str(job)
    rows["job_attempts"] = str(scalar(conn,
        "insert into public.job_attempts (job_id, attempt_number) values (%s, 1) returning id",
        (job,)))
    rows["tarot_readings"] = str(scalar(conn,
        "insert into public.tarot_readings (user_id, job_id, question, card_count, cards,"
        " tarot_reading) values (%s, %s, 'ความรักของฉัน', 3, '[1, 2, 3]', '{}') returning id",
        (user_id, job)))
    rows["user_payment_methods"] = str(scalar(conn,
        "insert into public.user_payment_methods (user_id, stripe_payment_method_id, last4)"
        " values (%s, %s, '4242') returning id", (user_id, f"pm_{uuid.uuid4().hex}")))
    conn.execute("insert into public.stripe_customers (user_id, stripe_customer_id)"
                 " values (%s, %s)", (user_id, f"cus_{uuid.uuid4().hex}"))
    rows["stripe_customers"] = user_id
    rows["user_identities"] = str(scalar(conn,
        "select id from public.user_identities where user_id = %s", (user_id,)))
    return rows


@pytest.fixture(scope="module")
def three(stack: Stack) -> tuple[Tenant, Tenant, Tenant]:
    """A and B with a row in every table; C, invited by B."""
    signed = [stack.sign_in("custom", name=f"Tenant {n}") for n in "ABC"]
    a, b, c = (Tenant(s["user"]["id"], s["access_token"], s["user"]["invite_code"], {})
               for s in signed)
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        a.rows = _seed(conn, a.id)
        b.rows = _seed(conn, b.id)
        # B invited C: visible to B and C, never to A.
        b.rows["user_invites"] = str(scalar(conn,
            "insert into public.user_invites (inviter_id, invitee_id, invite_code)"
            " values (%s, %s, %s) returning id", (b.id, c.id, b.invite_code)))
        a.rows["user_invites"] = str(scalar(conn,
            "insert into public.user_invites (inviter_id, invite_code)"
            " values (%s, %s) returning id", (a.id, a.invite_code)))
    c.rows["user_invites"] = b.rows["user_invites"]
    return a, b, c


@pytest.fixture(scope="module")
def tenants(three: tuple[Tenant, Tenant, Tenant]) -> tuple[Tenant, Tenant]:
    return three[0], three[1]


def _snapshot(stack: Stack, user_id: str) -> tuple:
    with psycopg.connect(stack.database_url) as conn:
        return first_row(conn,
            "select name, picture_url, email, star_balance, coin_balance, tier, total_invites,"
            " invited_by, invite_code, external_id, external_provider,"
            " (select count(*) from public.wallet_transactions w where w.user_id = u.id),"
            " (select count(*) from public.user_invites i where i.inviter_id = u.id)"
            " from public.users u where id = %s", (user_id,))


def _key(table: str) -> str:
    return "user_id" if table == "stripe_customers" else "id"


def _table_state(stack: Stack, table: str) -> list[tuple]:
    """Every row of `table` as text, to compare before and after a refused write."""
    with psycopg.connect(stack.database_url) as conn:
        return [tuple(row) for row in conn.execute(
            f"select t::text from public.{table} t order by 1").fetchall()]


@pytest.mark.parametrize("table", TABLES)
def test_user_reads_only_their_own_rows(stack: Stack, tenants, table):
    a, b = tenants
    response = stack.rest("GET", f"{table}?select=*", a.token)

    assert response.status_code == 200, response.text
    seen = {str(row[_key(table)]) for row in response.json()}
    assert a.rows[table] in seen
    assert b.rows[table] not in seen
    targeted = stack.rest("GET", f"{table}?{_key(table)}=eq.{b.rows[table]}", a.token)
    assert targeted.status_code == 200 and targeted.json() == []


@pytest.mark.parametrize("table", TABLES)
def test_anonymous_requests_see_nothing(stack: Stack, tenants, table):
    with psycopg.connect(stack.database_url) as conn:
        assert scalar(conn, f"select count(*) from public.{table}") > 0  # there is something
    bare = stack.http.get(f"{stack.rest_url}/{table}?select=*")
    for response in (bare, stack.rest("GET", f"{table}?select=*", None),
                     stack.rest("GET", f"{table}?select=*", api_key("anon"))):
        assert response.status_code in (200, 401, 403), response.text
        if response.status_code == 200:
            assert response.json() == []


@pytest.mark.parametrize("table", TABLES)
def test_anonymous_requests_cannot_write(stack: Stack, tenants, table):
    a, _ = tenants
    before = _table_state(stack, table)
    for method, kwargs in (("POST", {"json": {"user_id": a.id}}),
                           ("PATCH", {"json": {"created_at": "2020-01-01T00:00:00Z"}}),
                           ("DELETE", {})):
        path = table if method == "POST" else f"{table}?{_key(table)}=eq.{a.rows[table]}"
        response = stack.rest(method, path, api_key("anon"), **kwargs)
        assert response.status_code in (400, 401, 403, 404) or response.status_code < 300
    assert _table_state(stack, table) == before


@pytest.mark.parametrize("rpc", ["exchange_coins", "search_readings", "reading_status",
                                 "set_default_payment_method", "wallet_summary"])
def test_anonymous_requests_cannot_call_the_rpcs(stack: Stack, tenants, rpc):
    a, _ = tenants
    before = _snapshot(stack, a.id), _table_state(stack, "user_payment_methods")
    response = stack.rest("POST", f"rpc/{rpc}", api_key("anon"), json=_rpc_calls(a)[rpc])
    assert response.status_code in (401, 403, 404), response.text
    assert (_snapshot(stack, a.id), _table_state(stack, "user_payment_methods")) == before


def test_user_cannot_change_or_delete_another_users_row(stack: Stack, tenants):
    a, b = tenants
    before = _snapshot(stack, b.id)

    patch = stack.rest("PATCH", f"users?id=eq.{b.id}", a.token, json={"name": "pwned"},
                       headers={"Prefer": "return=representation"})
    delete = stack.rest("DELETE", f"users?id=eq.{b.id}", a.token)

    assert patch.status_code in (200, 401, 403, 404), patch.text
    if patch.status_code == 200:
        assert patch.json() == []
    assert delete.status_code in (200, 204, 401, 403, 404)
    assert _snapshot(stack, b.id) == before


@pytest.mark.parametrize("table", TABLES)
def test_user_cannot_change_or_delete_another_users_rows_in_any_table(stack: Stack, tenants,
                                                                      table):
    a, b = tenants
    before = _table_state(stack, table)
    column = "name" if table == "users" else "created_at"
    value = "pwned" if table == "users" else "2020-01-01T00:00:00Z"
    target = f"{table}?{_key(table)}=eq.{b.rows[table]}"

    patch = stack.rest("PATCH", target, a.token, json={column: value},
                       headers={"Prefer": "return=representation"})
    delete = stack.rest("DELETE", target, a.token, headers={"Prefer": "return=representation"})

    for response in (patch, delete):
        assert response.status_code in (401, 403, 404) or response.status_code < 300
        if response.status_code == 200:
            assert response.json() == []
    assert _table_state(stack, table) == before


def test_invitee_sees_the_invite_and_the_outsider_does_not(stack: Stack, three):
    a, b, c = three
    invite = b.rows["user_invites"]
    for tenant, visible in ((b, True), (c, True), (a, False)):
        rows = stack.rest("GET", f"user_invites?id=eq.{invite}", tenant.token)
        assert rows.status_code == 200, rows.text
        assert (rows.json() != []) is visible


def test_invite_lists_show_the_invites_sent_or_redeemed_and_no_others(stack: Stack, three):
    """The app's two invite lists as it asks for them: sent (`inviter_id=eq.<me>`) and all
    (inviter or invitee), newest first."""
    a, b, c = three
    order = "order=created_at.desc&limit=20"

    def ids(tenant: Tenant, query: str) -> set[str]:
        rows = stack.rest("GET", f"user_invites?select=id&{query}", tenant.token)
        assert rows.status_code == 200, rows.text
        return {row["id"] for row in rows.json()}

    sent_by_b, sent_by_a = b.rows["user_invites"], a.rows["user_invites"]
    assert ids(b, f"inviter_id=eq.{b.id}&{order}") == {sent_by_b}
    assert ids(b, order) == {sent_by_b}
    assert ids(a, f"inviter_id=eq.{a.id}&{order}") == {sent_by_a}
    assert ids(a, order) == {sent_by_a}
    # C redeemed B's code: C sees that one invite in both lists, and nothing A sent.
    assert ids(c, order) == {sent_by_b}
    assert ids(c, f"inviter_id=eq.{b.id}&{order}") == {sent_by_b}
    assert ids(c, f"inviter_id=eq.{c.id}&{order}") == set()
    # Asking for someone else's sent invites shows none of them.
    assert ids(a, f"inviter_id=eq.{b.id}&{order}") == set()
    assert ids(b, f"inviter_id=eq.{a.id}&{order}") == set()


@pytest.mark.parametrize("table", [t for t in TABLES if t != "users"])
def test_user_cannot_write_any_other_table(stack: Stack, tenants, table):
    a, _ = tenants
    with psycopg.connect(stack.database_url) as conn:
        count = scalar(conn, f"select count(*) from public.{table}")

    # A row the table could take, so the refusal is the missing privilege, not a bad column.
    row = {"job_attempts": {"job_id": a.rows["jobs"], "attempt_number": 9},
           "user_invites": {"inviter_id": a.id, "invite_code": a.invite_code},
           }.get(table, {"user_id": a.id})
    inserted = stack.rest("POST", table, a.token, json=row)
    updated = stack.rest("PATCH", f"{table}?{_key(table)}=eq.{a.rows[table]}", a.token,
                         json={"created_at": "2020-01-01T00:00:00Z"})
    deleted = stack.rest("DELETE", f"{table}?{_key(table)}=eq.{a.rows[table]}", a.token)

    assert inserted.status_code in (401, 403), inserted.text
    assert updated.status_code in (401, 403, 404) or updated.status_code < 300
    assert deleted.status_code in (401, 403, 404) or deleted.status_code < 300
    with psycopg.connect(stack.database_url) as conn:
        assert scalar(conn, f"select count(*) from public.{table}") == count
        still = first_row(conn,
            f"select created_at > '2021-01-01' from public.{table} where {_key(table)} = %s",
            (a.rows[table],))
    assert still == (True,)


def test_user_can_change_their_name_and_picture(stack: Stack, tenants):
    a, _ = tenants
    response = stack.rest("PATCH", f"users?id=eq.{a.id}", a.token,
                          json={"name": "นกน้อย", "picture_url": "https://img.test/a.png"},
                          headers={"Prefer": "return=representation"})
    assert response.status_code == 200, response.text
    assert response.json()[0]["name"] == "นกน้อย"
    assert _snapshot(stack, a.id)[:2] == ("นกน้อย", "https://img.test/a.png")


@pytest.mark.parametrize("column", sorted(PROTECTED_USER_COLUMNS))
def test_user_cannot_change_balances_tier_or_invite_data(stack: Stack, tenants, column):
    a, b = tenants
    value = PROTECTED_USER_COLUMNS[column]
    if column == "invited_by":
        value = b.id
    before = _snapshot(stack, a.id)

    response = stack.rest("PATCH", f"users?id=eq.{a.id}", a.token, json={column: value})

    assert response.status_code in (400, 401, 403), response.text
    assert _snapshot(stack, a.id) == before


def test_user_cannot_insert_a_user_or_mint_one_through_the_upsert_rpc(stack: Stack, tenants):
    a, _ = tenants
    with psycopg.connect(stack.database_url) as conn:
        users = scalar(conn, "select count(*) from public.users")
    insert = stack.rest("POST", "users", a.token,
                        json={"external_id": "x", "external_provider": "custom"})
    rpc = stack.rest("POST", "rpc/upsert_user_from_identity", a.token,
                     json={"p_provider": "custom", "p_external_id": uuid.uuid4().hex})
    assert insert.status_code in (401, 403)
    assert rpc.status_code in (401, 403, 404)
    with psycopg.connect(stack.database_url) as conn:
        assert scalar(conn, "select count(*) from public.users") == users


def test_private_functions_are_not_reachable(stack: Stack, tenants):
    a, _ = tenants
    for fn, args in (("apply_wallet_change", {"p_user_id": a.id}),
                     ("generate_invite_code", {})):
        response = stack.rest("POST", f"rpc/{fn}", a.token, json=args)
        assert response.status_code in (401, 403, 404), response.text


def test_rpc_cannot_reach_another_users_job(stack: Stack, tenants):
    a, b = tenants
    other = stack.rest("POST", "rpc/reading_status", a.token, json={"job_id": b.rows["jobs"]})
    own = stack.rest("POST", "rpc/reading_status", a.token, json={"job_id": a.rows["jobs"]})
    assert other.status_code == 200 and other.json() in ([], None)
    assert own.status_code == 200 and own.json() not in ([], None)


def test_rpc_cannot_make_another_users_card_default(stack: Stack, tenants):
    a, b = tenants
    card = b.rows["user_payment_methods"]
    before = _table_state(stack, "user_payment_methods")
    refused = stack.rest("POST", "rpc/set_default_payment_method", a.token,
                         json={"payment_method_id": card})
    assert refused.status_code == 400 and refused.json()["message"] == "not_found", refused.text
    assert _table_state(stack, "user_payment_methods") == before
    with psycopg.connect(stack.database_url) as conn:
        is_default = scalar(conn, "select is_default from public.user_payment_methods"
                                  " where id = %s", (card,))
    assert is_default is False


def test_wallet_summary_is_the_callers_own(stack: Stack, tenants):
    a, b = tenants
    for tenant in (a, b):
        summary = stack.rest("POST", "rpc/wallet_summary", tenant.token, json={})
        assert summary.status_code == 200, summary.text
        body = summary.json()
        row = _snapshot(stack, tenant.id)
        assert body["user_id"] == tenant.id
        assert (body["star_balance"], body["coin_balance"], body["invite_code"]) == (
            row[3], row[4], row[8])


def test_rpc_exchange_and_search_act_on_the_callers_own_data(stack: Stack, tenants):
    a, b = tenants
    before_b = _snapshot(stack, b.id)
    exchanged = stack.rest("POST", "rpc/exchange_coins", a.token,
                           json={"coins": 100, "idempotency_key": uuid.uuid4().hex})
    found = stack.rest("POST", "rpc/search_readings", a.token, json={"query": "ความรัก"})
    assert exchanged.status_code == 200, exchanged.text
    assert found.status_code == 200, found.text
    assert {str(r["id"]) for r in found.json()} == {a.rows["tarot_readings"]}
    assert _snapshot(stack, b.id) == before_b
