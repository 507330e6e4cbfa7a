"""Disputes. Stripe's test mode opens them with special cards; the stand-in also opens and
closes them on request (control endpoints), and supports the API's accept (`close` → lost)."""

from __future__ import annotations

import copy
from typing import Any

from devstack.stripe_standin import forms, objects
from devstack.stripe_standin.errors import invalid
from devstack.stripe_standin.state import AUTOMATIC, RequestContext, StandinState

Obj = dict[str, Any]
REASONS = ("fraudulent", "duplicate", "product_not_received", "product_unacceptable",
           "subscription_canceled", "credit_not_processed", "general", "unrecognized")
# The fee the stand-in charges for a dispute, in the charge's smallest unit (a plausible
# amount, not Stripe's price list).
DISPUTE_FEE = 1500
_OPEN = ("warning_needs_response", "warning_under_review", "needs_response", "under_review")


def open_dispute(state: StandinState, ch: Obj, amount: int, reason: str) -> Obj:
    if ch["status"] != "succeeded":
        raise invalid(f"Charge {ch['id']} did not succeed and cannot be disputed.")
    if ch["disputed"]:
        raise invalid(f"Charge {ch['id']} already has a dispute.")
    if not 1 <= amount <= ch["amount"]:
        raise invalid("The dispute amount must be between 1 and the charge amount.",
                      param="amount")
    dp = objects.dispute(ch, amount, reason)
    state.disputes[dp["id"]] = dp
    ch["disputed"] = True
    state.emit("charge.dispute.created", dp, AUTOMATIC)
    dp["balance_transactions"] = [objects.dispute_balance_transaction(dp, -amount, DISPUTE_FEE)]
    state.emit("charge.dispute.funds_withdrawn", dp, AUTOMATIC)
    return dp


def close_dispute(state: StandinState, dp: Obj, status: str, ctx: RequestContext) -> Obj:
    if dp["status"] not in _OPEN:
        raise invalid(f"This dispute is already closed (status {dp['status']}).")
    dp["status"] = status
    state.emit("charge.dispute.closed", dp, ctx)
    if status == "won":
        dp["balance_transactions"].append(
            objects.dispute_balance_transaction(dp, dp["amount"], 0))
        state.emit("charge.dispute.funds_reinstated", dp, ctx)
    return dp


def retrieve_dispute(state: StandinState, params: Obj, ctx: RequestContext, id: str) -> Obj:
    return state.get("disputes", id, "dispute")


def update_dispute(state: StandinState, params: Obj, ctx: RequestContext, id: str) -> Obj:
    """`POST /v1/disputes/{id}`: evidence and metadata; `submit=true` sends the evidence to the
    bank (`under_review`). As in Stripe's test mode, submitted `uncategorized_text`
    `winning_evidence` or `losing_evidence` closes the dispute won or lost."""
    forms.check_allowed(params, ("evidence", "metadata", "submit"))
    dp = state.get("disputes", id, "dispute")
    if dp["status"] not in _OPEN:
        raise invalid(f"This dispute is already closed (status {dp['status']}).")
    evidence = forms.mapping(params, "evidence") or {}
    unknown = set(evidence) - set(dp["evidence"])
    if unknown:
        raise invalid(f"Received unknown parameter: evidence[{sorted(unknown)[0]}]",
                      code="parameter_unknown")
    previous = {"status": dp["status"]}
    dp["evidence"].update({k: v or None for k, v in evidence.items()})
    dp["metadata"] = forms.merge_metadata(dp["metadata"], params)
    details = dp["evidence_details"]
    details["has_evidence"] = details["has_evidence"] or bool(evidence)
    if forms.boolean(params, "submit"):
        details["submission_count"] += 1
        details["submission_method"] = "manual"
        dp["status"] = "warning_under_review" if dp["status"].startswith("warning") \
            else "under_review"
    state.emit("charge.dispute.updated", dp, ctx, previous)
    verdict = {"winning_evidence": "won", "losing_evidence": "lost"}.get(
        str(dp["evidence"].get("uncategorized_text")))
    if verdict and dp["status"] == "under_review":
        close_dispute(state, dp, verdict, ctx)
    return dp


def accept_dispute(state: StandinState, params: Obj, ctx: RequestContext, id: str) -> Obj:
    """`POST /v1/disputes/{id}/close`: the merchant accepts the dispute, so it is lost."""
    forms.check_allowed(params, ())
    return close_dispute(state, state.get("disputes", id, "dispute"), "lost", ctx)


def list_disputes(state: StandinState, params: Obj, ctx: RequestContext) -> Obj:
    items = [copy.deepcopy(d) for d in forms.matching(state.disputes.values(), params,
                                                      "charge", "payment_intent")]
    return objects.paginate("/v1/disputes", items, params)
