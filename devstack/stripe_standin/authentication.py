"""3-D Secure. A card that asks for authentication leaves an on-session confirmation in
`requires_action` with a `next_action` (`use_stripe_sdk` for the mobile SDKs, `redirect_to_url`
when a `return_url` was given), and the payment waits for the customer's challenge; an
off-session payment of such a card is declined with `authentication_required`. The challenge's
outcome is decided through a control (`complete` or `fail`), as the customer would in the bank's
page."""

from __future__ import annotations

import secrets
from typing import Any

from devstack.stripe_standin import charging
from devstack.stripe_standin.cards import TestCard
from devstack.stripe_standin.errors import invalid
from devstack.stripe_standin.state import RequestContext, StandinState, new_id

Obj = dict[str, Any]
FAILURE_CODE = "payment_intent_authentication_failure"
FAILURE_MESSAGE = ("The provided PaymentMethod has failed authentication. You can provide "
                   "payment_method_data or a new PaymentMethod to attempt to fulfill this "
                   "PaymentIntent again.")


def challenge_needed(card: TestCard | None, off_session: bool) -> bool:
    if card is None or card.authentication in (None, "frictionless"):
        return False
    return card.authentication == "required" or not off_session


def frictionless(card: TestCard | None) -> Obj | None:
    """The charge's `three_d_secure` for a card authenticated without a challenge."""
    if card is None or card.authentication != "frictionless":
        return None
    return details("frictionless")


def details(flow: str) -> Obj:
    return {"authentication_flow": flow, "electronic_commerce_indicator": "05",
            "exemption_indicator": None, "result": "authenticated", "result_reason": None,
            "transaction_id": f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-"
                              f"{secrets.token_hex(2)}-{secrets.token_hex(2)}-"
                              f"{secrets.token_hex(6)}",
            "version": "2.2.0"}


def require_action(state: StandinState, pi: Obj, return_url: str | None,
                   ctx: RequestContext) -> None:
    source = new_id("src")
    if return_url:
        next_action: Obj = {"type": "redirect_to_url", "redirect_to_url": {
            "return_url": return_url,
            "url": f"https://hooks.stripe.com/3d_secure_2/hosted?merchant=acct_standin"
                   f"&payment_intent={pi['id']}&source={source}"}}
    else:
        next_action = {"type": "use_stripe_sdk", "use_stripe_sdk": {
            "type": "three_d_secure_redirect", "source": source,
            "stripe_js": f"https://hooks.stripe.com/redirect/authenticate/{source}"}}
    pi.update({"status": "requires_action", "next_action": next_action})
    state.emit("payment_intent.requires_action", pi, ctx)


def finish(state: StandinState, pi: Obj, outcome: str, ctx: RequestContext) -> Obj:
    """The customer completes (`complete`) or fails (`fail`) the challenge."""
    if pi["status"] != "requires_action" or (pi["next_action"] or {}).get("type") not in (
            "use_stripe_sdk", "redirect_to_url"):
        raise invalid(f"PaymentIntent {pi['id']} is not waiting for 3-D Secure authentication "
                      f"(status {pi['status']}).")
    if outcome == "fail":
        charging.fail_attempt(state, pi, FAILURE_CODE, FAILURE_MESSAGE, ctx)
        return pi
    pm = state.get("payment_methods", pi["payment_method"], "payment_method")
    try:
        charging.charge(state, pi, pm, ctx, details("challenge"))
    except Exception as exc:  # a card that authenticates and is then declined
        if getattr(exc, "status", None) != 402:
            raise
    return pi
