"""Charging a confirmed PaymentIntent: the charge and its events, succeeded or declined. Shared by
confirmation, the end of a 3-D Secure challenge and a paid PromptPay QR code."""

from __future__ import annotations

import copy
from typing import Any

from devstack.stripe_standin import disputes, objects
from devstack.stripe_standin.customers import attach, decline_error
from devstack.stripe_standin.errors import StripeError, card_declined
from devstack.stripe_standin.state import RequestContext, StandinState, new_id

Obj = dict[str, Any]
AUTHENTICATION_REQUIRED = "authentication_required"


def charge(state: StandinState, pi: Obj, pm: Obj, ctx: RequestContext,
           three_d_secure: Obj | None = None) -> Obj:
    """Charge `pm` for `pi`: succeeded, or declined (raises the card error after its events)."""
    card = state.cards.get(pm["id"])
    ch = objects.charge(pi, pm, three_d_secure)
    state.charges[ch["id"]] = ch
    pi["latest_charge"] = ch["id"]
    pi["next_action"] = None
    if card is not None and card.decline_code:
        decline(state, pi, ch, ctx, error=decline_error(state, pm, {"charge": ch["id"]}))
    ch.update({"status": "succeeded", "paid": True, "captured": True,
               "amount_captured": ch["amount"], "balance_transaction": new_id("txn"),
               "outcome": objects.outcome(False),
               "receipt_url": f"https://pay.stripe.com/receipts/{ch['id']}"})
    pi.update({"status": "succeeded", "amount_received": pi["amount"],
               "last_payment_error": None})
    if pi["setup_future_usage"] and pi["customer"] and pm["customer"] is None:
        attach(state, pm, pi["customer"], ctx)
    state.emit("charge.succeeded", ch, ctx)
    state.emit("payment_intent.succeeded", pi, ctx)
    if card is not None and card.dispute:
        disputes.open_dispute(state, ch, ch["amount"], "fraudulent")
    return ch


def authentication_required(state: StandinState, pi: Obj, pm: Obj, ctx: RequestContext) -> None:
    """An off-session payment of a card that asks for 3-D Secure: Stripe declines it."""
    ch = objects.charge(pi, pm)
    state.charges[ch["id"]] = ch
    pi["latest_charge"] = ch["id"]
    error = card_declined(AUTHENTICATION_REQUIRED, AUTHENTICATION_REQUIRED,
                          "Your card was declined. This transaction requires authentication.",
                          {"payment_method": copy.deepcopy(pm), "charge": ch["id"]})
    decline(state, pi, ch, ctx, error=error)


def decline(state: StandinState, pi: Obj, ch: Obj, ctx: RequestContext, *,
            error: StripeError) -> None:
    ch.update({"status": "failed", "failure_code": error.code,
               "failure_message": error.message,
               "outcome": objects.outcome(True, error.decline_code)})
    pi.update({"status": "requires_payment_method", "payment_method": None,
               "next_action": None, "last_payment_error": error.body()["error"]})
    state.emit("charge.failed", ch, ctx)
    state.emit("payment_intent.payment_failed", pi, ctx)
    error.extra["payment_intent"] = copy.deepcopy(pi)
    raise error


def fail_attempt(state: StandinState, pi: Obj, code: str, message: str,
                 ctx: RequestContext) -> None:
    """An attempt that ends without a charge (a failed 3-D Secure challenge, an expired QR
    code): the PaymentIntent needs a new payment method, and says why."""
    pm = state.payment_methods.get(pi["payment_method"] or "")
    error = StripeError(400, "invalid_request_error", message, code=code,
                        extra={"payment_method": copy.deepcopy(pm)} if pm else None)
    pi.update({"status": "requires_payment_method", "payment_method": None,
               "next_action": None, "last_payment_error": error.body()["error"]})
    state.emit("payment_intent.payment_failed", pi, ctx)
