"""Refunds, full or partial, by charge or payment intent."""

from __future__ import annotations

from typing import Any

from devstack.stripe_standin import forms, objects
from devstack.stripe_standin.errors import invalid
from devstack.stripe_standin.state import RequestContext, StandinState

Obj = dict[str, Any]
_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


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
    re = objects.refund(ch, amount, forms.choice(params, "reason", _REASONS),
                        forms.merge_metadata({}, params))
    state.refunds[re["id"]] = re
    ch["amount_refunded"] += amount
    ch["refunded"] = ch["amount_refunded"] == ch["amount"]
    refunds = ch["refunds"]
    refunds["data"].insert(0, dict(re))
    refunds["total_count"] = len(refunds["data"])
    state.emit("refund.created", re, ctx)
    state.emit("charge.refunded", ch, ctx)
    return re


def retrieve_refund(state: StandinState, params: Obj, ctx: RequestContext, id: str) -> Obj:
    return state.get("refunds", id, "refund")


def list_refunds(state: StandinState, params: Obj, ctx: RequestContext) -> Obj:
    items = forms.matching(state.refunds.values(), params, "charge", "payment_intent")
    return objects.paginate("/v1/refunds", items, params)
