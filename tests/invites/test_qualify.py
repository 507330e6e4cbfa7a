"""Qualification: the invitee's first successful payment accepts the invite and pays the inviter
once, in coins, at the tier rate of the inviter's new count of accepted invites."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.db.conftest import connect, one
from tests.invites.conftest import (
    accept_invites,
    code_of,
    invite_of,
    pending_payment,
    redeem,
    stripe_event,
    succeed,
    user,
    wallet,
)


def qualify(conn: psycopg.Connection[Any], invitee: Any, payment_id: Any) -> Any:
    with conn.transaction():
        conn.execute("set local role service_role")
        return one(conn, "select private.qualify_invite(%s, %s) as accepted",
                   (invitee, payment_id))["accepted"]


def reward_rows(conn: psycopg.Connection[Any], inviter: Any) -> list[dict[str, Any]]:
    return conn.execute(
        "select * from public.wallet_transactions where user_id = %s"
        " and transaction_type = 'invite_reward' order by seq", (inviter,)).fetchall()


def test_first_payment_accepts_the_invite_and_credits_the_inviter(conn):
    inviter, invitee = user(conn), user(conn)
    redeem(conn, invitee, code_of(conn, inviter))
    payment = pending_payment(conn, invitee)

    assert succeed(conn, payment)["result"] == "settled"

    invite = invite_of(conn, invitee)
    assert invite["status"] == "accepted" and invite["accepted_at"] is not None
    assert invite["is_reward_claimed"] and invite["coin_reward"] == 100
    assert wallet(conn, inviter) | {"invited_by": None} == {
        "star_balance": 0, "coin_balance": 100, "total_invites": 1, "tier": "bronze",
        "invited_by": None}
    assert wallet(conn, invitee)["star_balance"] == 5  # the invitee's stars, same transaction
    [row] = reward_rows(conn, inviter)
    assert row["dedupe_key"] == f"invite:{invite['id']}"
    assert (row["amount"], row["currency"], row["balance_after"]) == (100, "COIN", 100)
    assert row["related_invite_id"] == invite["id"]
    assert row["metadata"]["tier"] == "bronze" and row["metadata"]["accepted_invites"] == 1


def test_reward_follows_the_tier_of_the_new_count(conn):
    inviter = user(conn)

    rewards = accept_invites(conn, inviter, 17)

    assert rewards[4] == 100  # 5th: bronze x1.0
    assert rewards[5] == 120  # 6th moves the inviter to silver and earns its rate
    assert rewards[14] == 120  # 15th: silver
    assert rewards[15] == 150  # 16th moves the inviter to gold
    assert rewards[16] == 150  # 17th: gold
    assert rewards == [100] * 5 + [120] * 10 + [150] * 2
    assert wallet(conn, inviter)["coin_balance"] == sum(rewards) == 500 + 1200 + 300
    assert wallet(conn, inviter)["total_invites"] == 17
    assert wallet(conn, inviter)["tier"] == "gold"


def test_tier_changes_exactly_at_6_and_16_accepted_invites(conn):
    inviter = user(conn)
    tiers = []
    for _ in range(16):
        accept_invites(conn, inviter, 1)
        tiers.append(wallet(conn, inviter)["tier"])
    assert tiers == ["bronze"] * 5 + ["silver"] * 10 + ["gold"]


def test_later_payments_replays_and_refunds_never_pay_again(conn):
    inviter, invitee = user(conn), user(conn)
    redeem(conn, invitee, code_of(conn, inviter))
    first = pending_payment(conn, invitee)
    event_id = f"evt_{uuid.uuid4().hex}"
    succeed(conn, first, event_id)

    assert succeed(conn, first, event_id)["duplicate"] is True  # the same event replayed
    assert succeed(conn, first)["result"] == "settled"  # a second event for the same payment
    succeed(conn, pending_payment(conn, invitee, "basic"))  # a later payment
    charge = one(conn, "select stripe_charge_id from public.payments where id = %s",
                 (first["id"],))["stripe_charge_id"]
    stripe_event(conn, f"evt_{uuid.uuid4().hex}", "charge.refunded", {
        "id": charge, "object": "charge", "payment_intent": first["stripe_payment_intent_id"],
        "amount": first["amount"], "amount_refunded": first["amount"], "refunded": True})

    assert wallet(conn, inviter)["coin_balance"] == 100
    assert len(reward_rows(conn, inviter)) == 1
    assert wallet(conn, inviter)["total_invites"] == 1
    assert wallet(conn, invitee)["star_balance"] == 17  # starter refunded, basic kept


def test_payment_of_a_user_without_an_invite_pays_nobody(conn):
    someone = user(conn)
    payment = pending_payment(conn, someone)
    assert qualify(conn, someone, payment["id"]) is None
    assert succeed(conn, payment)["result"] == "settled"
    assert wallet(conn, someone)["coin_balance"] == 0


def test_qualify_refuses_a_payment_of_someone_else(conn):
    inviter, invitee, other = user(conn), user(conn), user(conn)
    redeem(conn, invitee, code_of(conn, inviter))
    with pytest.raises(psycopg.Error) as info:
        qualify(conn, invitee, pending_payment(conn, other)["id"])
    assert info.value.sqlstate == "MV006"
    assert invite_of(conn, invitee)["status"] == "pending"


def test_qualify_is_for_the_service_role_only(conn):
    for role in ("anon", "authenticated"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute(f"set local role {role}")
            conn.execute("select private.qualify_invite(%s, %s)", (uuid.uuid4(), uuid.uuid4()))


def _at_once(url: str, count: int, work: Any) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        with connect(url, row_factory=dict_row) as own:
            barrier.wait(timeout=10)
            try:
                results[index] = work(own, index)
            except psycopg.Error as exc:
                results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_duplicated_concurrent_webhooks_for_the_first_payment_pay_one_reward(conn, invites_db):
    inviter, invitee = user(conn), user(conn)
    redeem(conn, invitee, code_of(conn, inviter))
    payment = pending_payment(conn, invitee)
    event_id = f"evt_{uuid.uuid4().hex}"

    # Stripe delivers the same event twice and a second event for the same intent, all at once.
    results = _at_once(invites_db, 4, lambda own, index: succeed(
        own, payment, event_id if index < 2 else None))

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r["duplicate"] for r in results[:2]) == [False, True]
    assert wallet(conn, inviter)["coin_balance"] == 100
    assert len(reward_rows(conn, inviter)) == 1
    assert wallet(conn, invitee)["star_balance"] == 5


def test_concurrent_qualifications_of_one_invite_pay_once(conn, invites_db):
    inviter, invitee = user(conn), user(conn)
    redeem(conn, invitee, code_of(conn, inviter))
    payment = pending_payment(conn, invitee)

    results = _at_once(invites_db, 4, lambda own, _: qualify(own, invitee, payment["id"]))

    assert [r for r in results if r is not None] == [invite_of(conn, invitee)["id"]]
    assert wallet(conn, inviter)["coin_balance"] == 100


def test_invitees_of_one_inviter_paying_at_once_each_count_once(conn, invites_db):
    inviter = user(conn)
    code = code_of(conn, inviter)
    invitees = [user(conn) for _ in range(6)]
    payments = []
    for invitee in invitees:
        redeem(conn, invitee, code)
        payments.append(pending_payment(conn, invitee))
    results = _at_once(invites_db, len(payments), lambda own, index: succeed(own, payments[index]))

    assert not [r for r in results if isinstance(r, Exception)], results
    # Serialised on the inviter's row: five at bronze, the sixth at silver, whatever the order.
    assert sorted(r["amount"] for r in reward_rows(conn, inviter)) == [100] * 5 + [120]
    assert wallet(conn, inviter) | {"invited_by": None} == {
        "star_balance": 0, "coin_balance": 620, "total_invites": 6, "tier": "silver",
        "invited_by": None}


def test_total_invites_counts_the_accepted_invites_the_reward_tier_reads(conn):
    # qualify_invite reads the count of accepted invites from users.total_invites (under the
    # inviter's row lock) instead of counting invite rows: the two must always agree.
    inviter = user(conn)
    code = code_of(conn, inviter)
    accept_invites(conn, inviter, 7)
    pending = user(conn)
    redeem(conn, pending, code)
    counted = one(conn, "select count(*) as n from public.user_invites"
                        " where inviter_id = %s and status = 'accepted'", (inviter,))["n"]

    assert wallet(conn, inviter)["total_invites"] == counted == 7
    [last] = reward_rows(conn, inviter)[-1:]
    assert last["metadata"]["accepted_invites"] == 7 and last["amount"] == 120
