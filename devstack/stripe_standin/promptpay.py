"""PromptPay. A PaymentIntent confirmed with a PromptPay payment method (created from
`payment_method_data`, with the payer's email as Stripe requires) waits in `requires_action` with
`next_action.promptpay_display_qr_code`: the QR's data, PNG and SVG images and a hosted
instructions page, served by the stand-in itself under `/_standin/promptpay/<pi>`. A control pays
the code (the charge succeeds) or lets it expire (`payment_intent.payment_failed`)."""

from __future__ import annotations

import copy
import secrets
from typing import Any

from devstack.stripe_standin import charging, forms, objects
from devstack.stripe_standin.errors import invalid, missing_param
from devstack.stripe_standin.state import RequestContext, StandinState, new_id, now

Obj = dict[str, Any]
# How long a PromptPay QR code can be paid (Stripe's hosted codes last minutes, not days).
QR_LIFETIME_SECONDS = 15 * 60
EXPIRED_CODE = "payment_intent_payment_attempt_expired"
EXPIRED_MESSAGE = ("The PaymentIntent's PromptPay QR code expired before the customer paid. "
                   "Confirm the PaymentIntent again to show a new code.")


def payment_method_from_data(state: StandinState, data: Obj) -> Obj:
    """`payment_method_data[type]=promptpay` (and billing details) → a new payment method."""
    if forms.text(data, "type") != "promptpay":
        raise invalid("The stand-in creates payment methods from payment_method_data only for "
                      "promptpay.", param="payment_method_data[type]")
    billing = forms.mapping(data, "billing_details") or {}
    pm: Obj = {
        "id": new_id("pm"), "object": "payment_method", "allow_redisplay": "unspecified",
        "billing_details": {"address": objects.empty_address(),
                            "email": forms.text(billing, "email"),
                            "name": forms.text(billing, "name"), "phone": None, "tax_id": None},
        "created": now(), "customer": None, "livemode": False,
        "metadata": forms.merge_metadata({}, data), "promptpay": {}, "type": "promptpay",
    }
    state.payment_methods[pm["id"]] = pm
    return pm


def display_qr_code(state: StandinState, pi: Obj, pm: Obj, base_url: str | None,
                    ctx: RequestContext) -> None:
    if pi["currency"] != "thb":
        raise invalid("PromptPay payments must be in THB.", param="currency",
                      code="payment_intent_invalid_parameter")
    if not pm["billing_details"]["email"]:
        raise missing_param("payment_method_data[billing_details][email]")
    page = f"{(base_url or 'http://127.0.0.1').rstrip('/')}/_standin/promptpay/{pi['id']}"
    pi.update({"status": "requires_action", "next_action": {
        "type": "promptpay_display_qr_code",
        "promptpay_display_qr_code": {
            # Real codes carry an EMVCo PromptPay payload; the stand-in's only needs to be a QR.
            "data": f"STANDIN-PROMPTPAY:{pi['id']}:{pi['amount']}:{secrets.token_hex(4)}",
            "expires_at": now() + QR_LIFETIME_SECONDS,
            "hosted_instructions_url": page,
            "image_url_png": f"{page}/qr.png",
            "image_url_svg": f"{page}/qr.svg",
        }}})
    state.emit("payment_intent.requires_action", pi, ctx)


def qr_code(pi: Obj) -> Obj | None:
    action = pi.get("next_action") or {}
    found = action.get("promptpay_display_qr_code")
    return copy.deepcopy(found) if isinstance(found, dict) else None


def settle(state: StandinState, pi: Obj, outcome: str, ctx: RequestContext) -> Obj:
    """The customer pays the code (`pay`), or it expires unpaid (`expire`)."""
    if pi["status"] != "requires_action" or qr_code(pi) is None:
        raise invalid(f"PaymentIntent {pi['id']} has no PromptPay QR code waiting to be paid "
                      f"(status {pi['status']}).")
    if outcome == "expire":
        charging.fail_attempt(state, pi, EXPIRED_CODE, EXPIRED_MESSAGE, ctx)
        return pi
    pm = state.get("payment_methods", pi["payment_method"], "payment_method")
    charging.charge(state, pi, pm, ctx)
    return pi
