"""Fixtures for the invite tests: a database of their own, users, payments, and a wallet audit
after every test."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.db.conftest import connect, make_user, one

MV_CODES = {
    "MV010": "invite_not_found",
    "MV011": "already_invited",
    "MV012": "self_invite",
    "MV013": "invite_window_closed",
    "MV014": "invite_cycle",
}


@pytest.fixture(scope="package")
def invites_db(database_factory: Any) -> str:
    """One migrated database for the invite tests: wallet_audit() must stay empty in all of it."""
    return database_factory(migrate=True)


@pytest.fixture
def conn(invites_db: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(invites_db, row_factory=dict_row) as c:
        yield c
        problems = c.execute("select * from public.wallet_audit()").fetchall()
        assert problems == [], problems


def user(conn: psycopg.Connection[Any], *, age_days: float = 0, **cols: Any) -> uuid.UUID:
    """A user who signed up `age_days` ago."""
    if age_days:
        cols["created_at"] = datetime.now(UTC) - timedelta(days=age_days)
    return make_user(conn, **cols)


def redeem(conn: psycopg.Connection[Any], invitee: uuid.UUID, code: str) -> dict[str, Any]:
    """public.redeem_invite as the service role calls it through PostgREST."""
    with conn.transaction():
        conn.execute("set local role service_role")
        row = one(conn, "select public.redeem_invite(%s, %s) as invite", (invitee, code))
    return dict(row["invite"])


def code_of(conn: psycopg.Connection[Any], user_id: uuid.UUID) -> str:
    return str(one(conn, "select invite_code from public.users where id = %s", (user_id,))[
        "invite_code"])


def invite_of(conn: psycopg.Connection[Any], invitee: uuid.UUID) -> dict[str, Any]:
    return dict(one(conn, "select * from public.user_invites where invitee_id = %s", (invitee,)))


def wallet(conn: psycopg.Connection[Any], user_id: uuid.UUID) -> dict[str, Any]:
    return dict(one(conn, "select star_balance, coin_balance, total_invites, tier, invited_by"
                          " from public.users where id = %s", (user_id,)))


def pending_payment(conn: psycopg.Connection[Any], user_id: uuid.UUID,
                    package: str = "starter") -> dict[str, Any]:
    """A pending payment with a PaymentIntent id, as `purchase` leaves it."""
    row = one(conn, """
        insert into public.payments (user_id, amount, package_type, stars_purchased, stars_bonus,
                                     stripe_payment_intent_id)
        select %s, p.amount_satang, p.code, p.stars, p.bonus_stars, %s
          from public.star_packages p where p.code = %s
        returning *""", (user_id, f"pi_{uuid.uuid4().hex}", package))
    return dict(row)


def stripe_event(conn: psycopg.Connection[Any], event_id: str, event_type: str,
                 obj: dict[str, Any]) -> dict[str, Any]:
    """public.apply_stripe_event as the stripe-webhook function calls it (service role)."""
    with conn.transaction():
        conn.execute("set local role service_role")
        row = one(conn, "select public.apply_stripe_event(%s, %s, %s::jsonb) as result",
                  (event_id, event_type, json.dumps(obj)))
    return dict(row["result"])


def succeed(conn: psycopg.Connection[Any], payment: dict[str, Any],
            event_id: str | None = None) -> dict[str, Any]:
    """Stripe's payment_intent.succeeded for `payment`, applied by the webhook's SQL."""
    intent = {"id": payment["stripe_payment_intent_id"], "object": "payment_intent",
              "status": "succeeded", "latest_charge": f"ch_{uuid.uuid4().hex}",
              "metadata": {"payment_id": str(payment["id"])}}
    return stripe_event(conn, event_id or f"evt_{uuid.uuid4().hex}",
                        "payment_intent.succeeded", intent)


def accept_invites(conn: psycopg.Connection[Any], inviter: uuid.UUID, count: int) -> list[int]:
    """`count` new invitees redeem the inviter's code and pay; the coins each acceptance paid."""
    code = code_of(conn, inviter)
    rewards = []
    for _ in range(count):
        before = wallet(conn, inviter)["coin_balance"]
        invitee = user(conn)
        redeem(conn, invitee, code)
        succeed(conn, pending_payment(conn, invitee))
        rewards.append(wallet(conn, inviter)["coin_balance"] - before)
    return rewards

