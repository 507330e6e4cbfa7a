"""Who sees an invite: the inviter and the invitee read it under RLS, nobody else does, and no
user changes any invite. wallet_summary() shows the inviter's accepted and pending counts and tier."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.db.conftest import acting_as, one
from tests.invites.conftest import (
    accept_invites,
    code_of,
    invite_of,
    pending_payment,
    redeem,
    succeed,
    user,
)


def visible_invites(conn: psycopg.Connection[Any], as_user: Any) -> set[uuid.UUID]:
    with acting_as(conn, "authenticated", as_user):
        return {r["id"] for r in conn.execute("select id from public.user_invites").fetchall()}


def summary(conn: psycopg.Connection[Any], as_user: Any) -> dict[str, Any]:
    with acting_as(conn, "authenticated", as_user):
        return dict(one(conn, "select public.wallet_summary() as s")["s"])


def test_inviter_and_invitee_see_the_invite_and_nobody_else_does(conn):
    inviter, invitee, stranger = user(conn), user(conn), user(conn)
    redeem(conn, invitee, code_of(conn, inviter))
    invite = invite_of(conn, invitee)["id"]

    assert visible_invites(conn, inviter) == {invite}
    assert visible_invites(conn, invitee) == {invite}
    assert visible_invites(conn, stranger) == set()
    with acting_as(conn, "anon"), pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select id from public.user_invites")


@pytest.mark.parametrize("who", ["inviter", "invitee", "stranger"])
@pytest.mark.parametrize("statement", [
    "update public.user_invites set status = 'accepted', accepted_at = now() where id = %(id)s",
    "update public.user_invites set coin_reward = 1000 where id = %(id)s",
    "delete from public.user_invites where id = %(id)s",
    "insert into public.user_invites (inviter_id, invitee_id, invite_code)"
    " values (%(inviter)s, %(stranger)s, %(code)s)",
])
def test_no_user_can_change_an_invite(conn, who, statement):
    people = {"inviter": user(conn), "invitee": user(conn), "stranger": user(conn)}
    code = code_of(conn, people["inviter"])
    redeem(conn, people["invitee"], code)
    before = invite_of(conn, people["invitee"])
    params = {"id": before["id"], "code": code, **people}

    with acting_as(conn, "authenticated", people[who]), pytest.raises(
        psycopg.errors.InsufficientPrivilege
    ):
        conn.execute(statement, params)

    assert invite_of(conn, people["invitee"]) == before
    assert conn.execute("select 1 from public.user_invites where invitee_id = %s",
                        (people["stranger"],)).fetchone() is None


def test_no_user_can_set_their_own_inviter_tier_or_invite_count(conn):
    me, other = user(conn), user(conn)
    for column, value in (("invited_by", other), ("tier", "gold"), ("total_invites", 16)):
        with acting_as(conn, "authenticated", me), pytest.raises(
            psycopg.errors.InsufficientPrivilege
        ):
            conn.execute(f"update public.users set {column} = %s where id = %s", (value, me))


def test_wallet_summary_shows_accepted_and_pending_invites_and_the_tier(conn):
    inviter = user(conn)
    accept_invites(conn, inviter, 6)
    for _ in range(2):
        redeem(conn, user(conn), code_of(conn, inviter))
    waiting = user(conn)
    redeem(conn, waiting, code_of(conn, inviter))

    before = summary(conn, inviter)
    succeed(conn, pending_payment(conn, waiting))
    after = summary(conn, inviter)

    assert (before["total_invites"], before["pending_invites"], before["tier"]) == (6, 3, "silver")
    assert before["coin_balance"] == 5 * 100 + 120
    assert (after["total_invites"], after["pending_invites"]) == (7, 2)
    assert after["coin_balance"] == before["coin_balance"] + 120
