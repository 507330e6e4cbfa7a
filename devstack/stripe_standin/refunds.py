"""Refunds, full or partial, by charge or payment intent, over their life: a card refund
succeeds at once, a PromptPay refund waits for the customer's bank details (`requires_action`);
a control moves any refund on (pending, succeeded, failed, canceled) with the events Stripe
sends: `refund.updated` and `charge.refund.updated` for every change, `refund.failed` too for a
failure. A refund that fails or is canceled gives its amount back to the charge."""

from __future__ import annotations

import copy
from typing import Any

from devstack.stripe_standin import forms, objects
from devstack.stripe_standin.errors import invalid
from devstack.stripe_standin.state import RequestContext, StandinState, new_id, now

Obj = dict[str, Any]
_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
STARTS = ("requires_action", "pending", "succeeded")
# Where each status may go; failed and canceled are final.
_MOVES = {"requires_action": ("pending", "succeeded", "failed", "canceled"),
          "pending": ("succeeded", "failed", "canceled"),
          "succeeded": ("failed",)}
# How long a PromptPay customer has to give bank details for a refund.
DETAILS_LIFETIME_SECONDS = 30 * 86400


def _charge_to_refund(state: StandinState, params: Obj) -> Obj:
    charge_id = forms.text(params, "charge")
    pi_id = forms.text(params, "payment_intent")
    if charge_id is None and pi_id is None:
        raise invalid("One of the following params should be provided for this request: "
                      "payment_intent or charge.", code="parameter_missing")
    if charge_id is not None:
        ch = state.get("charges", charge_id, "charge")
        if pi_id is not None and ch["payment_intent"] != pi_id:
            raise invalid(f"Charge {charge_id} does not belong to PaymentIntent {pi_id}.",
                          param="charge")
        return ch
    assert pi_id is not None
    pi = state.get("payment_intents", pi_id, "payment_intent")
    latest = state.charges.get(pi["latest_charge"] or "")
    if pi["status"] != "succeeded" or latest is None:
        raise invalid(f"This PaymentIntent ({pi_id}) does not have a successful charge to "
                      "refund.", param="payment_intent")
    return latest


def create_refund(state: StandinState, params: Obj, ctx: RequestContext) -> Obj:
    forms.check_allowed(params, ("charge", "payment_intent", "amount", "reason", "metadata",
                                 "instructions_email", "refund_application_fee",
                                 "reverse_transfer"))
    ch = _charge_to_refund(state, params)
    if ch["status"] != "succeeded":
        raise invalid(f"Charge {ch['id']} has not succeeded and cannot be refunded.",
                      param="charge")
    if ch["disputed"]:
        raise invalid(f"Charge {ch['id']} has been charged back; cannot issue a refund.",
                      code="charge_disputed")
    remaining = ch["amount"] - ch["amount_refunded"]
    if remaining <= 0:
        raise invalid(f"Charge {ch['id']} has already been refunded.",
                      code="charge_already_refunded")
    amount = forms.integer(params, "amount")
    amount = remaining if amount is None else amount
    if amount < 1:
        raise invalid("Invalid positive integer", param="amount",
                      code="parameter_invalid_integer")
    if amount > remaining:
        raise invalid(f"Refund amount ({amount} {ch['currency']}) is greater than unrefunded "
                      f"amount on charge ({remaining} {ch['currency']})", param="amount",
                      code="amount_too_large")
    promptpay = ch["payment_method_details"]["type"] == "promptpay"
    status = state.refund_start or ("requires_action" if promptpay else "succeeded")
    email = forms.text(params, "instructions_email") or ch["billing_details"]["email"]
    re = objects.refund(ch, amount, forms.choice(params, "reason", _REASONS),
                        forms.merge_metadata({}, params))
    # Stripe leaves out (rather than nulls) what does not apply to this refund.
    re["status"] = status
    if promptpay and email:
        re["instructions_email"] = email
    if status == "requires_action":
        re["next_action"] = _display_details(email)
    if promptpay:
        re["destination_details"] = {"promptpay": {"reference": None,
                                                   "reference_status": "pending"},
                                     "type": "promptpay"}
    state.refunds[re["id"]] = re
    ch["amount_refunded"] += amount
    ch["refunded"] = ch["amount_refunded"] == ch["amount"]
    refunds = ch["refunds"]
    refunds["data"].insert(0, dict(re))
    refunds["total_count"] = len(refunds["data"])
    state.emit("refund.created", re, ctx)
    state.emit("charge.refunded", ch, ctx)
    return re


def _display_details(email: str | None) -> Obj:
    sent = now()
    return {"type": "display_details", "display_details": {
        "email_sent": {"email_sent_at": sent, "email_sent_to": email or ""},
        "expires_at": sent + DETAILS_LIFETIME_SECONDS}}


def move(state: StandinState, re: Obj, status: str, ctx: RequestContext) -> Obj:
    if status not in _MOVES.get(re["status"], ()):
        raise invalid(f"Refund {re['id']} cannot go from {re['status']} to {status}.")
    previous = {"status": re["status"]}
    re["status"] = status
    re.pop("next_action", None)
    if status in ("failed", "canceled"):
        ch = state.get("charges", re["charge"], "charge")
        ch["amount_refunded"] -= re["amount"]
        ch["refunded"] = False
        if status == "failed":
            re.update({"failure_reason": "expired_or_canceled_card",
                       "failure_balance_transaction": new_id("txn")})
    ch = state.get("charges", re["charge"], "charge")
    ch["refunds"]["data"] = [copy.deepcopy(re) if r["id"] == re["id"] else r
                             for r in ch["refunds"]["data"]]
    state.emit("refund.updated", re, ctx, previous)
    state.emit("charge.refund.updated", re, ctx, previous)
    if status == "failed":
        state.emit("refund.failed", re, ctx, previous)
    return re


def cancel_refund(state: StandinState, params: Obj, ctx: RequestContext, id: str) -> Obj:
    """`POST /v1/refunds/{id}/cancel`: only a refund waiting for the customer can be canceled."""
    forms.check_allowed(params, ())
    re = state.get("refunds", id, "refund")
    if re["status"] != "requires_action":
        raise invalid(f"Refund {id} cannot be canceled because it has a status of "
                      f"{re['status']}. Only refunds with a status of requires_action can be "
                      "canceled.")
    return move(state, re, "canceled", ctx)


def retrieve_refund(state: StandinState, params: Obj, ctx: RequestContext, id: str) -> Obj:
    return state.get("refunds", id, "refund")


def list_refunds(state: StandinState, params: Obj, ctx: RequestContext) -> Obj:
    items = forms.matching(state.refunds.values(), params, "charge", "payment_intent")
    return objects.paginate("/v1/refunds", items, params)
