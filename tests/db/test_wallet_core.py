"""private.apply_wallet_change and wallet_audit(): the money-safe core every feature calls."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.db.conftest import apply_change, audit, connect, credit, make_user, one


@pytest.fixture(scope="module")
def wallet_db(database_factory: Any) -> str:
    """A database of this module's own: some tests corrupt balances on purpose."""
    return database_factory(migrate=True)


@pytest.fixture
def conn(wallet_db: str):
    with connect(wallet_db, row_factory=dict_row) as c:
        yield c


def balances(conn: psycopg.Connection[Any], user_id: uuid.UUID) -> tuple[int, int]:
    row = one(conn, "select star_balance, coin_balance from public.users where id = %s", (user_id,))
    return row["star_balance"], row["coin_balance"]


def test_credit_updates_balance_and_records_signed_amount_with_balance_after(conn):
    user = make_user(conn)
    row = credit(conn, user, "STAR", 5, key="purchase:a")
    assert (row["amount"], row["balance_after"], row["dedupe_key"]) == (5, 5, "purchase:a")
    debit = apply_change(conn, user, "STAR", -2, "reading", "reading:a")
    assert (debit["amount"], debit["balance_after"]) == (-2, 3)
    assert balances(conn, user) == (3, 0)
    assert audit(conn, [user]) == []


def test_debit_below_zero_raises_insufficient_stars_and_changes_nothing(conn):
    user = make_user(conn, stars=1)
    with pytest.raises(psycopg.Error) as info:
        apply_change(conn, user, "STAR", -2, "reading", f"reading:{uuid.uuid4()}")
    assert info.value.sqlstate == "MV001"
    assert info.value.diag.message_primary == "insufficient_stars"
    assert balances(conn, user) == (1, 0)


def test_coin_debit_below_zero_raises_insufficient_coins(conn):
    user = make_user(conn, coins=50)
    with pytest.raises(psycopg.Error) as info:
        apply_change(conn, user, "COIN", -100, "exchange", f"exchange:{uuid.uuid4()}")
    assert info.value.sqlstate == "MV002"
    assert balances(conn, user) == (0, 50)


def test_zero_amount_is_a_validation_error(conn):
    user = make_user(conn)
    with pytest.raises(psycopg.Error) as info:
        apply_change(conn, user, "STAR", 0, "refund", "zero")
    assert info.value.sqlstate == "MV006"


def test_unknown_user_is_not_found(conn):
    with pytest.raises(psycopg.Error) as info:
        apply_change(conn, uuid.uuid4(), "STAR", 1, "purchase", f"p:{uuid.uuid4()}")
    assert info.value.sqlstate == "MV005"


def test_replayed_dedupe_key_returns_original_row_and_changes_nothing(conn):
    user = make_user(conn)
    first = credit(conn, user, "STAR", 7, key=f"purchase:{user}")
    again = credit(conn, user, "STAR", 7, key=f"purchase:{user}")
    assert again == first
    assert balances(conn, user) == (7, 0)
    count = one(
        conn, "select count(*) as n from public.wallet_transactions where user_id = %s", (user,)
    )["n"]
    assert count == 1


def test_dedupe_key_of_another_users_change_is_refused(conn):
    alice, bob = make_user(conn), make_user(conn)
    credit(conn, alice, "STAR", 3, key=f"shared:{alice}")
    with pytest.raises(psycopg.Error) as info:
        credit(conn, bob, "STAR", 3, key=f"shared:{alice}")
    assert info.value.sqlstate == "MV004"
    assert balances(conn, bob) == (0, 0)


def test_clamped_debit_stops_at_zero_and_records_shortfall(conn):
    user = make_user(conn, stars=4)
    row = apply_change(conn, user, "STAR", -10, "refund", f"stripe-refund:{user}", clamp=True)
    assert (row["amount"], row["balance_after"]) == (-4, 0)
    assert row["metadata"] == {"requested": -10, "shortfall": 6}
    assert balances(conn, user) == (0, 0)
    assert audit(conn, [user]) == []


def test_clamped_debit_with_nothing_to_take_writes_nothing(conn):
    user = make_user(conn)
    row = one(
        conn,
        "select private.apply_wallet_change(%s, 'STAR', -3, 'dispute', %s, p_clamp => true) as r",
        (user, f"dispute:{user}"),
    )
    assert row["r"] is None
    count = one(
        conn, "select count(*) as n from public.wallet_transactions where user_id = %s", (user,)
    )["n"]
    assert count == 0


def test_wallet_audit_reports_a_tampered_cached_balance(conn):
    user = make_user(conn, stars=5)
    assert audit(conn, [user]) == []
    conn.execute("update public.users set star_balance = 9 where id = %s", (user,))
    problems = {r["problem"] for r in audit(conn, [user])}
    assert problems == {
        "cached_balance_differs_from_ledger_sum",
        "cached_balance_differs_from_last_balance_after",
    }


def test_wallet_audit_reports_a_balance_without_ledger(conn):
    user = make_user(conn)
    conn.execute("update public.users set coin_balance = 100 where id = %s", (user,))
    rows = audit(conn, [user])
    assert [(r["currency"], r["problem"], r["ledger_sum"]) for r in rows] == [
        ("COIN", "cached_balance_differs_from_ledger_sum", 0)
    ]


def test_wallet_audit_reports_a_broken_balance_after_chain(conn):
    user = make_user(conn, stars=2)
    # A row forged past the wallet core (as the table owner, with the trigger-free insert path):
    # its amount does not lead from the previous balance_after to its own.
    conn.execute(
        "insert into public.wallet_transactions"
        " (user_id, transaction_type, amount, currency, balance_after, dedupe_key)"
        " values (%s, 'purchase', 1, 'STAR', 2, %s)",
        (user, f"forged:{user}"),
    )
    conn.execute("update public.users set star_balance = 3 where id = %s", (user,))
    problems = {r["problem"] for r in audit(conn, [user])}
    assert problems == {
        "broken_balance_after_chain",
        "cached_balance_differs_from_last_balance_after",
    }


def _ledger_row(conn: psycopg.Connection[Any]) -> tuple[uuid.UUID, uuid.UUID]:
    user = make_user(conn, stars=3)
    row = one(conn, "select id from public.wallet_transactions where user_id = %s", (user,))
    return user, row["id"]


@pytest.mark.parametrize(
    "statement",
    [
        "update public.wallet_transactions set amount = 300 where id = %(id)s",
        "update public.wallet_transactions set metadata = '{\"note\": 1}' where id = %(id)s",
        "delete from public.wallet_transactions where id = %(id)s",
    ],
)
def test_ledger_rows_are_immutable_even_for_the_table_owner(conn, statement):
    # The superuser owns the table and bypasses every grant and policy: only the trigger stops it.
    _, row_id = _ledger_row(conn)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute(statement, {"id": row_id})
    assert (
        one(conn, "select amount from public.wallet_transactions where id = %s", (row_id,))[
            "amount"
        ]
        == 3
    )


def test_ledger_cannot_be_truncated(conn):
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("truncate public.wallet_transactions")


@pytest.mark.parametrize("role", ["service_role", "authenticated"])
def test_ledger_rows_stay_immutable_even_if_a_role_were_granted_writes(conn, role):
    # Grants are the first guard; the trigger holds even if a later migration granted too much.
    user, row_id = _ledger_row(conn)
    with conn.transaction(force_rollback=True):
        conn.execute(f"grant update, delete on public.wallet_transactions to {role}")
        conn.execute(
            f"create policy wt_probe_u on public.wallet_transactions for update to {role}"
            " using (true)"
        )
        conn.execute(
            f"create policy wt_probe_d on public.wallet_transactions for delete to {role}"
            " using (true)"
        )
        conn.execute(f"set local role {role}")
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (f'{{"role": "{role}", "sub": "{user}"}}',),
        )
        for statement in (
            "update public.wallet_transactions set amount = 300 where id = %s",
            "delete from public.wallet_transactions where id = %s",
        ):
            with (
                pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
                conn.transaction(),
            ):
                conn.execute(statement, (row_id,))


def test_service_role_has_no_ledger_write_privilege(conn):
    _, row_id = _ledger_row(conn)
    with conn.transaction(force_rollback=True):
        conn.execute("set local role service_role")
        for statement in (
            "update public.wallet_transactions set amount = 300 where id = %s",
            "delete from public.wallet_transactions where id = %s",
        ):
            with (
                pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"),
                conn.transaction(),
            ):
                conn.execute(statement, (row_id,))


def test_a_user_with_ledger_rows_cannot_be_deleted_out_from_under_them(conn):
    user, _ = _ledger_row(conn)
    # on delete restrict: a cascade would have to delete ledger rows, set null would update them.
    # (PostgreSQL 15 reports 23503, newer versions 23001.)
    with pytest.raises((psycopg.errors.ForeignKeyViolation, psycopg.errors.RestrictViolation)):
        conn.execute("delete from public.users where id = %s", (user,))


def test_wallet_audit_is_granted_to_service_role_only(conn):
    for role, allowed in (("service_role", True), ("authenticated", False), ("anon", False)):
        row = one(
            conn,
            "select has_function_privilege(%s, 'public.wallet_audit()', 'execute') as ok",
            (role,),
        )
        assert row["ok"] is allowed, role


@pytest.mark.slow
def test_concurrent_debits_never_overdraw(wallet_db):
    with connect(wallet_db, row_factory=dict_row) as conn:
        user = make_user(conn, stars=10)
    workers = 32
    barrier = threading.Barrier(workers, timeout=30)

    def debit(i: int) -> bool:
        with connect(wallet_db) as c:
            barrier.wait()
            try:
                apply_change(c, user, "STAR", -1, "reading", f"reading:{user}:{i}")
            except psycopg.Error as exc:
                assert exc.sqlstate == "MV001"
                return False
            return True

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(debit, range(workers)))
    assert results.count(True) == 10
    with connect(wallet_db, row_factory=dict_row) as conn:
        assert balances(conn, user) == (0, 0)
        assert audit(conn, [user]) == []


@pytest.mark.slow
def test_concurrent_replays_of_one_dedupe_key_write_one_row(wallet_db):
    with connect(wallet_db, row_factory=dict_row) as conn:
        user = make_user(conn)
    workers = 20
    barrier = threading.Barrier(workers, timeout=30)

    def purchase(_: int) -> uuid.UUID:
        with connect(wallet_db, row_factory=dict_row) as c:
            barrier.wait()
            return credit(c, user, "STAR", 5, key=f"purchase:{user}")["id"]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        ids = set(pool.map(purchase, range(workers)))
    assert len(ids) == 1
    with connect(wallet_db, row_factory=dict_row) as conn:
        assert balances(conn, user) == (5, 0)
        count = one(
            conn, "select count(*) as n from public.wallet_transactions where user_id = %s", (user,)
        )["n"]
        assert count == 1
        assert audit(conn, [user]) == []
