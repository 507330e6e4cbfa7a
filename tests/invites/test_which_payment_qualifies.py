"""Which of the invitee's payments qualifies the invite (docs/DESIGN.md: accepted "when the
invitee's first Stripe payment succeeds"): the outcome follows what happened at Stripe, never the
order in which the webhooks arrive.

- A refund or lost dispute delivered before the success: the charge did succeed, so the
  inviter is rewarded exactly as when the success arrives first and the reversal later.
- A payment that succeeded before the code was redeemed had no invite to qualify; the
  invitee's next successful payment while the invite is pending does."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from tests.invites.conftest import (
    code_of,
    invite_of,
    pending_payment,
    redeem,
    stripe_event,
    succeed,
    user,
    wallet,
)


class Charge:
    """One payment's charge and the Stripe events about it, as the webhook's SQL gets them."""

    def __init__(self, conn: psycopg.Connection[Any], payment: dict[str, Any]) -> None:
        self.conn, self.payment = conn, payment
        self.id = f"ch_{uuid.uuid4().hex}"

    def _send(self, event_type: str, obj: dict[str, Any]) -> str:
        return str(stripe_event(self.conn, f"evt_{uuid.uuid4().hex}", event_type, obj)["result"])

    def succeeded(self) -> str:
        return self._send("payment_intent.succeeded", {
            "id": self.payment["stripe_payment_intent_id"], "object": "payment_intent",
            "status": "succeeded", "latest_charge": self.id,
            "metadata": {"payment_id": str(self.payment["id"])}})

    def refunded(self) -> str:
        amount = self.payment["amount"]
        return self._send("charge.refunded", {
            "id": self.id, "object": "charge", "amount": amount, "amount_refunded": amount,
            "refunded": True, "payment_intent": self.payment["stripe_payment_intent_id"],
            "metadata": {"payment_id": str(self.payment["id"])}})

    def dispute_lost(self) -> str:
        return self._send("charge.dispute.closed", {
            "id": f"dp_{uuid.uuid4().hex}", "object": "dispute", "status": "lost",
            "amount": self.payment["amount"], "charge": self.id, "reason": "fraudulent",
            "payment_intent": self.payment["stripe_payment_intent_id"]})


def outcome(conn: psycopg.Connection[Any], inviter: Any, invitee: Any,
            payment: dict[str, Any]) -> dict[str, Any]:
    """Everything the invite's qualification decides, in a form two runs can be compared by."""
    invite = invite_of(conn, invitee)
    rewards = conn.execute(
        "select amount, currency, dedupe_key = 'invite:' || related_invite_id as keyed"
        " from public.wallet_transactions where user_id = %s and transaction_type = 'invite_reward'",
        (inviter,)).fetchall()
    status = conn.execute("select status from public.payments where id = %s",
                          (payment["id"],)).fetchone()
    inviter_wallet = wallet(conn, inviter)
    return {
        "invite": (invite["status"], invite["coin_reward"], invite["is_reward_claimed"]),
        "inviter": (inviter_wallet["coin_balance"], inviter_wallet["total_invites"],
                    inviter_wallet["tier"]),
        "rewards": [dict(r) for r in rewards],
        "invitee_stars": wallet(conn, invitee)["star_balance"],
        "payment": status and status["status"],
    }


def redeemed(conn: psycopg.Connection[Any]) -> tuple[Any, Any]:
    inviter, invitee = user(conn), user(conn)
    redeem(conn, invitee, code_of(conn, inviter))
    return inviter, invitee


def test_a_refund_delivered_before_the_success_rewards_as_the_success_then_the_refund(conn):
    in_order_inviter, in_order_invitee = redeemed(conn)
    in_order = pending_payment(conn, in_order_invitee)
    charge = Charge(conn, in_order)
    assert charge.succeeded() == "settled"
    assert charge.refunded() == "refunded"

    reversed_inviter, reversed_invitee = redeemed(conn)
    reversed_ = pending_payment(conn, reversed_invitee)
    charge = Charge(conn, reversed_)
    assert charge.refunded() == "refunded"  # settles and claws back in one transaction
    assert charge.succeeded() == "settled"  # the late success changes nothing

    expected = {
        "invite": ("accepted", 100, True),
        "inviter": (100, 1, "bronze"),
        "rewards": [{"amount": 100, "currency": "COIN", "keyed": True}],
        "invitee_stars": 0,
        "payment": "refunded",
    }
    assert outcome(conn, in_order_inviter, in_order_invitee, in_order) == expected
    assert outcome(conn, reversed_inviter, reversed_invitee, reversed_) == expected


def test_a_lost_dispute_delivered_before_the_success_rewards_as_in_order(conn):
    in_order_inviter, in_order_invitee = redeemed(conn)
    in_order = pending_payment(conn, in_order_invitee)
    charge = Charge(conn, in_order)
    charge.succeeded()
    assert charge.dispute_lost() == "dispute_lost"

    reversed_inviter, reversed_invitee = redeemed(conn)
    reversed_ = pending_payment(conn, reversed_invitee)
    charge = Charge(conn, reversed_)
    assert charge.dispute_lost() == "dispute_lost"
    charge.succeeded()

    first = outcome(conn, in_order_inviter, in_order_invitee, in_order)
    assert first == outcome(conn, reversed_inviter, reversed_invitee, reversed_)
    assert (first["invite"], first["inviter"], first["invitee_stars"], first["payment"]) == (
        ("accepted", 100, True), (100, 1, "bronze"), 0, "disputed")


def test_a_refunded_first_payment_is_the_one_that_qualified_and_a_later_one_pays_nothing(conn):
    inviter, invitee = redeemed(conn)
    first = Charge(conn, pending_payment(conn, invitee))
    first.refunded()
    first.succeeded()

    succeed(conn, pending_payment(conn, invitee, "basic"))

    assert wallet(conn, inviter)["coin_balance"] == 100
    assert wallet(conn, inviter)["total_invites"] == 1
    assert wallet(conn, invitee)["star_balance"] == 17


def test_an_invitee_who_paid_before_redeeming_qualifies_with_the_next_payment(conn):
    inviter, invitee = user(conn), user(conn)
    succeed(conn, pending_payment(conn, invitee))
    redeem(conn, invitee, code_of(conn, inviter))
    assert invite_of(conn, invitee)["status"] == "pending"
    assert wallet(conn, inviter)["coin_balance"] == 0  # redeeming alone pays nothing

    succeed(conn, pending_payment(conn, invitee))
    succeed(conn, pending_payment(conn, invitee))  # and the one after pays nothing more

    invite = invite_of(conn, invitee)
    assert (invite["status"], invite["coin_reward"], invite["is_reward_claimed"]) == (
        "accepted", 100, True)
    assert (wallet(conn, inviter)["coin_balance"], wallet(conn, inviter)["total_invites"]) == (
        100, 1)
    assert wallet(conn, invitee)["star_balance"] == 15


def test_a_payment_started_before_redeeming_and_succeeding_after_qualifies(conn):
    inviter, invitee = user(conn), user(conn)
    payment = pending_payment(conn, invitee)  # PaymentIntent created, not yet paid
    redeem(conn, invitee, code_of(conn, inviter))

    succeed(conn, payment)

    assert invite_of(conn, invitee)["status"] == "accepted"
    assert wallet(conn, inviter)["coin_balance"] == 100
