"""Setup intents: save a card for a customer (the payment method is attached on success)."""

from __future__ import annotations

import copy
from typing import Any

from devstack.stripe_standin import forms, objects
from devstack.stripe_standin.customers import attach, decline_error, resolve_payment_method
from devstack.stripe_standin.errors import StripeError, invalid, unexpected_state
from devstack.stripe_standin.state import RequestContext, StandinState, new_id

Obj = dict[str, Any]
_CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
_CONFIRM_PARAMS = ("payment_method", "return_url", "mandate_data", "payment_method_options",
                   "use_stripe_sdk")


def create_setup_intent(state: StandinState, params: Obj, ctx: RequestContext) -> Obj:
    forms.check_allowed(params, (*_CONFIRM_PARAMS, "customer", "metadata", "description",
                                 "confirm", "usage", "payment_method_types",
                                 "automatic_payment_methods", "attach_to_self",
                                 "flow_directions", "single_use"))
    customer_id = forms.text(params, "customer")
    if customer_id is not None:
        state.get("customers", customer_id, "customer")
    types = forms.string_list(params, "payment_method_types") or ["card"]
    if any(t != "card" for t in types):
        raise invalid("The stand-in supports only the 'card' payment method type.",
                      param="payment_method_types")
    automatic = forms.mapping(params, "automatic_payment_methods")
    pm_id = forms.text(params, "payment_method")
    pm = resolve_payment_method(state, pm_id) if pm_id else None
    seti = objects.setup_intent(forms.merge_metadata({}, params), {
        "automatic_payment_methods": (
            {"allow_redirects": automatic.get("allow_redirects", "always"),
             "enabled": forms.boolean(automatic, "enabled")} if automatic else None),
        "customer": customer_id, "description": forms.text(params, "description"),
        "payment_method": pm["id"] if pm else None, "payment_method_types": types,
        "status": "requires_confirmation" if pm else "requires_payment_method",
        "usage": forms.choice(params, "usage", ("off_session", "on_session"), "off_session"),
    })
    state.setup_intents[seti["id"]] = seti
    state.emit("setup_intent.created", seti, ctx)
    if forms.boolean(params, "confirm"):
        _confirm(state, seti, ctx)
    return seti


def retrieve_setup_intent(state: StandinState, params: Obj, ctx: RequestContext,
                          id: str) -> Obj:
    return state.get("setup_intents", id, "intent")


def confirm_setup_intent(state: StandinState, params: Obj, ctx: RequestContext,
                         id: str) -> Obj:
    forms.check_allowed(params, _CONFIRM_PARAMS)
    seti = state.get("setup_intents", id, "intent")
    if seti["status"] not in _CONFIRMABLE:
        raise unexpected_state(
            f"You cannot confirm this SetupIntent because it has a status of {seti['status']}.",
            "setup_intent_unexpected_state")
    pm_id = forms.text(params, "payment_method")
    if pm_id:
        seti["payment_method"] = resolve_payment_method(state, pm_id)["id"]
    _confirm(state, seti, ctx)
    return seti


def _confirm(state: StandinState, seti: Obj, ctx: RequestContext) -> None:
    if seti["payment_method"] is None:
        raise unexpected_state("You cannot confirm this SetupIntent because it's missing a "
                               "payment method.", "setup_intent_unexpected_state")
    pm = state.get("payment_methods", seti["payment_method"], "payment_method")
    seti["latest_attempt"] = new_id("setatt")
    card = state.cards.get(pm["id"])
    if card is not None and card.decline_on_attach:
        error = decline_error(state, pm, {})
        seti.update({"status": "requires_payment_method", "payment_method": None,
                     "last_setup_error": error.body()["error"]})
        state.emit("setup_intent.setup_failed", seti, ctx)
        error.extra["setup_intent"] = copy.deepcopy(seti)
        raise error
    if card is not None and card.authentication in ("required", "on_session"):
        # Saving a card that asks for 3-D Secure needs the customer's challenge first.
        seti.update({"status": "requires_action", "next_action": {
            "type": "use_stripe_sdk", "use_stripe_sdk": {
                "type": "three_d_secure_redirect", "source": new_id("src")}}})
        state.emit("setup_intent.requires_action", seti, ctx)
        return
    succeed(state, seti, pm, ctx)


def succeed(state: StandinState, seti: Obj, pm: Obj, ctx: RequestContext) -> None:
    if seti["customer"] is not None:
        attach(state, pm, seti["customer"], ctx)
    seti.update({"status": "succeeded", "last_setup_error": None, "next_action": None})
    state.emit("setup_intent.succeeded", seti, ctx)


def finish_authentication(state: StandinState, seti: Obj, outcome: str,
                          ctx: RequestContext) -> Obj:
    """The customer completes (`complete`) or fails (`fail`) the challenge of a SetupIntent."""
    if seti["status"] != "requires_action":
        raise unexpected_state(f"SetupIntent {seti['id']} is not waiting for 3-D Secure "
                               f"authentication (status {seti['status']}).",
                               "setup_intent_unexpected_state")
    pm = state.get("payment_methods", seti["payment_method"], "payment_method")
    if outcome == "complete":
        succeed(state, seti, pm, ctx)
        return seti
    error = StripeError(400, "invalid_request_error",
                        "The latest attempt to set up the payment method has failed because "
                        "authentication failed.", code="setup_intent_authentication_failure",
                        extra={"payment_method": copy.deepcopy(pm)})
    seti.update({"status": "requires_payment_method", "payment_method": None,
                 "next_action": None, "last_setup_error": error.body()["error"]})
    state.emit("setup_intent.setup_failed", seti, ctx)
    return seti


def cancel_setup_intent(state: StandinState, params: Obj, ctx: RequestContext,
                        id: str) -> Obj:
    forms.check_allowed(params, ("cancellation_reason",))
    seti = state.get("setup_intents", id, "intent")
    if seti["status"] not in _CONFIRMABLE:
        raise unexpected_state(
            f"You cannot cancel this SetupIntent because it has a status of {seti['status']}.",
            "setup_intent_unexpected_state")
    seti.update({"status": "canceled", "cancellation_reason": forms.choice(
        params, "cancellation_reason", ("abandoned", "duplicate", "requested_by_customer"))})
    state.emit("setup_intent.canceled", seti, ctx)
    return seti


def list_setup_intents(state: StandinState, params: Obj, ctx: RequestContext) -> Obj:
    items = forms.matching(state.setup_intents.values(), params, "customer", "payment_method")
    return objects.paginate("/v1/setup_intents", items, params)
