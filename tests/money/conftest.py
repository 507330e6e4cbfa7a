"""Fixtures of the money tests: the shared migrated database, users with balances, pending
payments, and events applied through public.apply_stripe_event as service_role."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.db.conftest import acting_as, connect, credit, make_user
from tests.money.events import StripePayment

__all__ = ["apply_event", "begin_purchase", "credit", "make_user", "payment",
           "record_intent", "star_balance"]


@pytest.fixture
def db(migrated_db: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(migrated_db, row_factory=dict_row) as conn:
        yield conn


def begin_purchase(conn: psycopg.Connection[Any], user_id: uuid.UUID,
                   package: str = "basic", key: str | None = None) -> dict[str, Any]:
    with conn.transaction():
        conn.execute("set local role service_role")
        row = conn.execute("select public.begin_purchase(%s, %s, %s, %s) as p",
                           (user_id, package, key or str(uuid.uuid4()), "hash")).fetchone()
    assert row is not None
    return dict(row["p"])


def apply_event(conn: psycopg.Connection[Any], event: dict[str, Any]) -> dict[str, Any]:
    """What the webhook does with a verified event, as the service role."""
    previous = event["data"].get("previous_attributes")
    with conn.transaction():
        conn.execute("set local role service_role")
        row = conn.execute(
            "select public.apply_stripe_event(%s, %s, %s::jsonb, %s::jsonb) as r",
            (event["id"], event["type"], json.dumps(event["data"]["object"]),
             None if previous is None else json.dumps(previous)),
        ).fetchone()
    assert row is not None
    return dict(row["r"])


def record_intent(conn: psycopg.Connection[Any], payment_id: Any, intent_id: str, *,
                  declined: bool = False) -> dict[str, Any]:
    with conn.transaction():
        conn.execute("set local role service_role")
        row = conn.execute(
            "select public.record_payment_intent(%s, %s, %s, %s, %s) as p",
            (payment_id, intent_id, declined, "card_declined" if declined else None,
             "Your card was declined." if declined else None)).fetchone()
    assert row is not None
    return dict(row["p"])


def payment(conn: psycopg.Connection[Any], payment_id: Any) -> dict[str, Any]:
    row = conn.execute("select * from public.payments where id = %s", (payment_id,)).fetchone()
    assert row is not None
    return dict(row)


def star_balance(conn: psycopg.Connection[Any], user_id: uuid.UUID) -> int:
    row = conn.execute("select star_balance from public.users where id = %s",
                       (user_id,)).fetchone()
    assert row is not None
    return int(row["star_balance"])


def paid(conn: psycopg.Connection[Any], user_id: uuid.UUID) -> StripePayment:
    """A basic package bought and paid (its PaymentIntent recorded, then succeeded)."""
    row = begin_purchase(conn, user_id, "basic")
    p = StripePayment(uuid.UUID(row["id"]), row["amount"])
    record_intent(conn, p.payment_id, p.intent_id)
    apply_event(conn, p.succeeded())
    return p


def held_stars(conn: psycopg.Connection[Any], user_id: uuid.UUID) -> int:
    """`held_stars` of wallet_summary(), asked as the user."""
    with acting_as(conn, "authenticated", user_id) as user_conn:
        row = user_conn.execute("select public.wallet_summary() as s").fetchone()
    assert row is not None
    return int(row["s"]["held_stars"])


@pytest.fixture(scope="package")
def stack(database_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The local stack with the real purchase, webhook and payment-methods handlers."""
    from tests.money.stack import money_stack

    with money_stack(database_factory(migrate=True), tmp_path_factory.mktemp("money")) as running:
        yield running
