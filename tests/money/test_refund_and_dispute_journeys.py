"""Refunds and disputes end to end: the Stripe stand-in moves them through their lives and sends
the events Stripe sends; the webhook function keeps each user's stars right at every step."""

from __future__ import annotations

import uuid

from tests.money.stack import MoneyStack, User


def paid(stack: MoneyStack, user: User, package: str = "basic", stars: int = 17) -> dict:
    body = stack.call("purchase", user, key=str(uuid.uuid4()), json={
        "package": package, "payment_method_id": "pm_card_visa"}).json()
    stack.wait_for(lambda: stack.me(user)["star_balance"] >= stars)
    return dict(body)


def summary(stack: MoneyStack, user: User) -> dict:
    response = stack.rest("POST", "rpc/wallet_summary", user, json={})
    assert response.status_code == 200, response.text
    return dict(response.json())


def status_of(stack: MoneyStack, user: User, payment_id: str) -> str:
    [row] = stack.rest("GET", f"payments?select=status&id=eq.{payment_id}", user).json()
    return str(row["status"])


def test_a_pending_refund_that_fails_gives_the_stars_back(stack: MoneyStack):
    user = stack.sign_in()
    purchase = paid(stack, user)
    stack.control.set_refund_start("pending")
    try:
        refund = stack.stripe.v1.refunds.create({"payment_intent": purchase["payment_intent_id"]})
    finally:
        stack.control.set_refund_start(None)
    assert refund.status == "pending"
    stack.wait_for(lambda: stack.me(user)["star_balance"] == 0)
    assert status_of(stack, user, purchase["payment_id"]) == "refunded"

    stack.control.move_refund(refund.id, "failed")
    stack.control.wait_for_event("refund.failed", refund.id)
    stack.wait_for(lambda: stack.me(user)["star_balance"] == 17)
    assert status_of(stack, user, purchase["payment_id"]) == "succeeded"


def test_a_promptpay_refund_waits_for_bank_details_and_a_cancel_gives_the_stars_back(
        stack: MoneyStack):
    user = stack.sign_in(email=True)
    purchase = stack.call("purchase", user, key=str(uuid.uuid4()), json={
        "package": "starter", "payment_method_type": "promptpay"}).json()
    stack.control.settle_promptpay(purchase["payment_intent_id"], "pay")
    stack.wait_for(lambda: stack.me(user)["star_balance"] == 5)

    refund = stack.stripe.v1.refunds.create({"payment_intent": purchase["payment_intent_id"]})
    assert refund.status == "requires_action"
    assert refund.next_action is not None and refund.next_action.type == "display_details"
    stack.wait_for(lambda: stack.me(user)["star_balance"] == 0)

    stack.stripe.v1.refunds.cancel(refund.id)
    stack.wait_for(lambda: stack.me(user)["star_balance"] == 5)
    assert status_of(stack, user, purchase["payment_id"]) == "succeeded"


def test_a_dispute_holds_the_stars_from_readings_until_it_is_won(stack: MoneyStack):
    user = stack.sign_in()
    purchase = paid(stack, user)
    charge = stack.stripe.v1.payment_intents.retrieve(purchase["payment_intent_id"]).latest_charge
    dispute = stack.control.open_dispute(str(charge))
    stack.control.wait_for_event("charge.dispute.funds_withdrawn", dispute["id"])
    stack.wait_for(lambda: summary(stack, user)["held_stars"] == 17)
    assert summary(stack, user)["star_balance"] == 0
    reading = stack.call("create-reading", user, key=str(uuid.uuid4()), json={
        "question": "งานใหม่จะดีไหม", "card_count": 3})
    assert (reading.status_code, reading.json()["error"]["code"]) == (402, "insufficient_stars")
    assert status_of(stack, user, purchase["payment_id"]) == "disputed"

    # Evidence that wins, as in Stripe's test mode: under review, then won.
    stack.stripe.v1.disputes.update(dispute["id"], {
        "evidence": {"uncategorized_text": "winning_evidence"}, "submit": True})
    stack.control.wait_for_event("charge.dispute.updated", dispute["id"])
    stack.control.wait_for_event("charge.dispute.funds_reinstated", dispute["id"])
    stack.wait_for(lambda: summary(stack, user)["star_balance"] == 17)
    assert summary(stack, user)["held_stars"] == 0
    assert status_of(stack, user, purchase["payment_id"]) == "succeeded"


def test_a_lost_dispute_keeps_the_held_stars(stack: MoneyStack):
    user = stack.sign_in()
    purchase = paid(stack, user, "starter", 5)
    charge = stack.stripe.v1.payment_intents.retrieve(purchase["payment_intent_id"]).latest_charge
    dispute = stack.control.open_dispute(str(charge))
    stack.wait_for(lambda: summary(stack, user)["held_stars"] == 5)

    stack.control.close_dispute(dispute["id"], "lost")
    stack.control.wait_for_event("charge.dispute.closed", dispute["id"])
    stack.wait_for(lambda: summary(stack, user)["held_stars"] == 0)
    assert summary(stack, user)["star_balance"] == 0
    assert status_of(stack, user, purchase["payment_id"]) == "disputed"
