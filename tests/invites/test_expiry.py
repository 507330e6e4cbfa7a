"""Expiry: the sweep marks pending invites past expires_at as expired; an expired invite never
pays, and an accepted one is never expired."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.db.conftest import one
from tests.invites.conftest import (
    code_of,
    invite_of,
    pending_payment,
    redeem,
    succeed,
    user,
    wallet,
)


def sweep(conn: psycopg.Connection[Any]) -> int:
    """public.expire_pending_invites() as the job consumer calls it (service role)."""
    with conn.transaction():
        conn.execute("set local role service_role")
        return int(one(conn, "select public.expire_pending_invites() as n")["n"])


def age_invite(conn: psycopg.Connection[Any], invitee: Any, days: int) -> None:
    """Move an invite's clock back `days` days, as if it had been redeemed then."""
    conn.execute("update public.user_invites set created_at = created_at - make_interval(days => %s),"
                 " expires_at = expires_at - make_interval(days => %s) where invitee_id = %s",
                 (days, days, invitee))


def redeemed(conn: psycopg.Connection[Any]) -> tuple[Any, Any]:
    inviter, invitee = user(conn), user(conn)
    redeem(conn, invitee, code_of(conn, inviter))
    return inviter, invitee


def test_sweep_expires_only_pending_invites_past_their_expiry(conn):
    _, fresh = redeemed(conn)
    _, almost = redeemed(conn)
    _, old = redeemed(conn)
    age_invite(conn, almost, 29)
    age_invite(conn, old, 31)

    assert sweep(conn) >= 1  # other tests' leftovers may expire too

    assert invite_of(conn, old)["status"] == "expired"
    assert invite_of(conn, almost)["status"] == "pending"
    assert invite_of(conn, fresh)["status"] == "pending"
    assert sweep(conn) == 0  # nothing left to expire


def test_an_invite_expired_by_the_sweep_never_pays(conn):
    inviter, invitee = redeemed(conn)
    age_invite(conn, invitee, 31)
    sweep(conn)

    succeed(conn, pending_payment(conn, invitee))

    assert invite_of(conn, invitee)["status"] == "expired"
    assert wallet(conn, inviter)["coin_balance"] == 0
    assert wallet(conn, inviter)["total_invites"] == 0
    assert wallet(conn, invitee)["star_balance"] == 5  # the invitee's purchase itself succeeds


def test_a_payment_after_expiry_does_not_pay_even_before_the_sweep(conn):
    inviter, invitee = redeemed(conn)
    age_invite(conn, invitee, 31)

    succeed(conn, pending_payment(conn, invitee))

    invite = invite_of(conn, invitee)
    assert invite["status"] == "expired" and not invite["is_reward_claimed"]
    assert wallet(conn, inviter)["coin_balance"] == 0


def test_an_invite_accepted_before_expiry_stays_accepted_and_paid(conn):
    inviter, invitee = redeemed(conn)
    succeed(conn, pending_payment(conn, invitee))
    age_invite(conn, invitee, 31)

    sweep(conn)

    assert invite_of(conn, invitee)["status"] == "accepted"
    assert wallet(conn, inviter)["coin_balance"] == 100


def test_an_expired_invite_still_counts_as_redeemed(conn):
    first, invitee = redeemed(conn)
    age_invite(conn, invitee, 31)
    sweep(conn)
    with pytest.raises(psycopg.Error) as info:
        redeem(conn, invitee, code_of(conn, user(conn)))
    assert info.value.sqlstate == "MV011"
    assert invite_of(conn, invitee)["inviter_id"] == first


def test_sweep_is_for_the_service_role_only(conn):
    for role in ("anon", "authenticated"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute(f"set local role {role}")
            conn.execute("select public.expire_pending_invites()")


def summary_of(conn: psycopg.Connection[Any], user_id: Any) -> dict[str, Any]:
    """public.wallet_summary() as the user calls it through the REST API."""
    with conn.transaction():
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true)",
                     (f'{{"sub": "{user_id}", "role": "authenticated"}}',))
        return dict(one(conn, "select public.wallet_summary() as s")["s"])


def test_an_invite_past_its_expiry_is_not_pending_in_the_summary_even_before_the_sweep(conn):
    inviter = user(conn)
    waiting, lapsed = user(conn), user(conn)
    redeem(conn, waiting, code_of(conn, inviter))
    redeem(conn, lapsed, code_of(conn, inviter))
    assert summary_of(conn, inviter)["pending_invites"] == 2

    age_invite(conn, lapsed, 31)

    assert invite_of(conn, lapsed)["status"] == "pending"  # the sweep has not run yet
    assert summary_of(conn, inviter)["pending_invites"] == 1
