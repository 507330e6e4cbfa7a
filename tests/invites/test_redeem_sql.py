"""public.redeem_invite: once per user, within the window, never one's own code, no cycles."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.db.conftest import connect
from tests.invites.conftest import MV_CODES, code_of, invite_of, redeem, user, wallet


def assert_refused(conn: psycopg.Connection[Any], invitee: Any, code: str, sqlstate: str) -> None:
    with pytest.raises(psycopg.Error) as info:
        redeem(conn, invitee, code)
    assert info.value.sqlstate == sqlstate
    assert info.value.diag.message_primary == MV_CODES[sqlstate]
    assert info.value.diag.message_detail  # the readable sentence the API returns


def test_redeem_creates_a_pending_invite_that_expires_after_30_days(conn):
    inviter, invitee = user(conn), user(conn)

    result = redeem(conn, invitee, code_of(conn, inviter))

    invite = invite_of(conn, invitee)
    assert result["invite_id"] == str(invite["id"])
    assert result["status"] == "pending" and result["inviter_id"] == str(inviter)
    assert invite["status"] == "pending" and invite["inviter_id"] == inviter
    assert not invite["is_reward_claimed"] and invite["coin_reward"] is None
    assert abs(invite["expires_at"] - datetime.now(UTC) - timedelta(days=30)) < timedelta(
        minutes=1)
    assert datetime.fromisoformat(result["expires_at"]) == invite["expires_at"]
    assert wallet(conn, invitee)["invited_by"] == inviter
    # Nothing is paid before the invitee's first payment.
    assert wallet(conn, inviter)["coin_balance"] == 0


def test_code_is_matched_whatever_the_case_spaces_and_dashes(conn):
    inviter, invitee = user(conn), user(conn)
    code = code_of(conn, inviter)
    typed = f" {code[:4].lower()}-{code[4:]} "

    assert redeem(conn, invitee, typed)["inviter_id"] == str(inviter)


def test_unknown_code_is_invite_not_found(conn):
    assert_refused(conn, user(conn), "ZZZZ0000", "MV010")
    assert_refused(conn, user(conn), "", "MV010")


def test_own_code_is_self_invite(conn):
    me = user(conn)
    assert_refused(conn, me, code_of(conn, me), "MV012")
    assert wallet(conn, me)["invited_by"] is None


def test_second_redemption_is_already_invited_even_with_the_same_code(conn):
    first, second, invitee = user(conn), user(conn), user(conn)
    redeem(conn, invitee, code_of(conn, first))

    assert_refused(conn, invitee, code_of(conn, second), "MV011")
    assert_refused(conn, invitee, code_of(conn, first), "MV011")
    assert invite_of(conn, invitee)["inviter_id"] == first


@pytest.mark.parametrize(("age_days", "allowed"), [(6.9, True), (7.1, False)])
def test_codes_are_accepted_only_within_7_days_of_signing_up(conn, age_days, allowed):
    inviter, invitee = user(conn, age_days=400), user(conn, age_days=age_days)
    if allowed:
        assert redeem(conn, invitee, code_of(conn, inviter))["status"] == "pending"
    else:
        assert_refused(conn, invitee, code_of(conn, inviter), "MV013")


def test_redeeming_the_code_of_ones_own_invitee_is_an_invite_cycle(conn):
    a, b = user(conn), user(conn)
    redeem(conn, b, code_of(conn, a))
    assert_refused(conn, a, code_of(conn, b), "MV014")


def test_longer_cycles_are_refused_and_chains_are_allowed(conn):
    a, b, c, d = user(conn), user(conn), user(conn), user(conn)
    redeem(conn, b, code_of(conn, a))  # b invited by a
    redeem(conn, c, code_of(conn, b))  # c invited by b
    assert_refused(conn, a, code_of(conn, c), "MV014")
    # d joins the chain below c: not a cycle.
    assert redeem(conn, d, code_of(conn, c))["inviter_id"] == str(c)


def test_redeem_is_for_the_service_role_only(conn):
    inviter, invitee = user(conn), user(conn)
    code = code_of(conn, inviter)
    for role in ("anon", "authenticated"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute(f"set local role {role}")
            conn.execute("select public.redeem_invite(%s, %s)", (invitee, code))
    assert wallet(conn, invitee)["invited_by"] is None


def _race(url: str, calls: list[tuple[Any, str]]) -> list[Any]:
    """Run redeem_invite calls at the same moment, one connection each; results or errors."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, invitee: Any, code: str) -> None:
        with connect(url, row_factory=dict_row) as own:
            barrier.wait(timeout=10)
            try:
                results[index] = redeem(own, invitee, code)
            except psycopg.Error as exc:
                results[index] = exc

    threads = [threading.Thread(target=run, args=(i, *call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_two_codes_redeemed_concurrently_by_one_invitee_exactly_one_wins(conn, invites_db):
    for _ in range(3):
        first, second, invitee = user(conn), user(conn), user(conn)

        results = _race(invites_db, [(invitee, code_of(conn, first)),
                                     (invitee, code_of(conn, second))])

        wins = [r for r in results if isinstance(r, dict)]
        losses = [r for r in results if isinstance(r, psycopg.Error)]
        assert len(wins) == 1 and len(losses) == 1
        assert losses[0].sqlstate == "MV011"
        invite = invite_of(conn, invitee)
        assert wins[0]["invite_id"] == str(invite["id"])
        assert wallet(conn, invitee)["invited_by"] == invite["inviter_id"]


def test_two_users_redeeming_each_others_codes_at_once_cannot_make_a_cycle(conn, invites_db):
    for _ in range(3):
        a, b = user(conn), user(conn)

        results = _race(invites_db, [(a, code_of(conn, b)), (b, code_of(conn, a))])

        losses = [r for r in results if isinstance(r, psycopg.Error)]
        assert len(losses) == 1 and losses[0].sqlstate == "MV014"
        links = conn.execute("select count(*) as n from public.user_invites"
                             " where invitee_id in (%s, %s)", (a, b)).fetchone()
        assert links is not None and links["n"] == 1
