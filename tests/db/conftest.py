"""Helpers for the data-model tests: users, and acting as a role the way PostgREST does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row


def connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, **kwargs)


@pytest.fixture
def db(migrated_db: str) -> Iterator[psycopg.Connection[Any]]:
    """A superuser connection to the shared migrated database (autocommit)."""
    with connect(migrated_db, row_factory=dict_row) as conn:
        yield conn


def make_user(
    conn: psycopg.Connection[Any], *, stars: int = 0, coins: int = 0, **cols: Any
) -> uuid.UUID:
    """Insert a user (as the superuser) and give it balances through the wallet core."""
    external_id = f"ext-{uuid.uuid4().hex}"
    values = {"external_id": external_id, "external_provider": "custom", **cols}
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    row = conn.execute(
        f"insert into public.users ({names}) values ({marks}) returning id",
        list(values.values()),
    ).fetchone()
    assert row is not None
    user_id = row["id"] if isinstance(row, dict) else row[0]
    if stars:
        credit(conn, user_id, "STAR", stars)
    if coins:
        credit(conn, user_id, "COIN", coins)
    return user_id


def credit(
    conn: psycopg.Connection[Any],
    user_id: uuid.UUID,
    currency: str,
    amount: int,
    key: str | None = None,
) -> Any:
    kind = "purchase" if currency == "STAR" and amount > 0 else "exchange"
    if currency == "COIN" and amount > 0:
        kind = "invite_reward"
    return apply_change(conn, user_id, currency, amount, kind, key or f"test:{uuid.uuid4()}")


def apply_change(
    conn: psycopg.Connection[Any],
    user_id: uuid.UUID,
    currency: str,
    amount: int,
    kind: str,
    key: str,
    *,
    clamp: bool = False,
    metadata: dict[str, Any] | None = None,
) -> Any:
    return conn.execute(
        "select (private.apply_wallet_change(%s, %s::public.currency, %s, %s::public.transaction_type,"
        " %s, %s::jsonb, p_clamp => %s)).*",
        (user_id, currency, amount, kind, key, json.dumps(metadata or {}), clamp),
    ).fetchone()


@contextmanager
def acting_as(
    conn: psycopg.Connection[Any], role: str, sub: uuid.UUID | None = None
) -> Iterator[psycopg.Connection[Any]]:
    """One transaction as PostgREST runs a request: local role and claims, rolled back after."""
    claims: dict[str, Any] = {"role": role}
    if sub is not None:
        claims.update(sub=str(sub), aud="authenticated")
    with conn.transaction(force_rollback=True):
        conn.execute("select set_config('role', %s, true)", (role,))
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        yield conn


def audit(conn: psycopg.Connection[Any], users: list[uuid.UUID] | None = None) -> list[Any]:
    """wallet_audit() rows, limited to `users` (other tests share the database)."""
    if users is None:
        return conn.execute("select * from public.wallet_audit()").fetchall()
    return conn.execute(
        "select * from public.wallet_audit() where user_id = any(%s)", (users,)
    ).fetchall()


def one(conn: psycopg.Connection[Any], sql: str, params: Any = ()) -> Any:
    """The single row a query returns."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row
