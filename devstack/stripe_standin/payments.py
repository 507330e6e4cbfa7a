"""Payment intents and the charges they create."""

from __future__ import annotations

from typing import Any

from devstack.stripe_standin import authentication, charging, forms, objects, promptpay
from devstack.stripe_standin.customers import resolve_payment_method
from devstack.stripe_standin.errors import invalid, unexpected_state
from devstack.stripe_standin.state import RequestContext, StandinState, now

Obj = dict[str, Any]
# Stripe's minimum charge per currency, in the smallest unit (฿10.00, $0.50).
_MINIMUM = {"thb": 1000, "usd": 50, "eur": 50, "gbp": 30, "jpy": 50, "sgd": 50}
_CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
_CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation",
               "requires_action", "processing")
_CONFIRM_PARAMS = ("payment_method", "off_session", "return_url", "setup_future_usage",
                   "receipt_email", "payment_method_options", "error_on_requires_action",
                   "use_stripe_sdk", "mandate_data", "payment_method_types",
                   "payment_method_data")
_TYPES = ("card", "promptpay")
_CREATE_PARAMS = (*_CONFIRM_PARAMS, "amount", "currency", "customer", "metadata", "confirm",
                  "automatic_payment_methods", "description", "statement_descriptor",
                  "statement_descriptor_suffix", "capture_method", "confirmation_method")


def _amount(params: Obj) -> int:
    amount = forms.integer(params, "amount", required=True)
    assert amount is not None
    if amount < 1:
        raise invalid("This value must be greater than or equal to 1.", param="amount",
                      code="parameter_invalid_integer")
    return amount


def _currency(params: Obj, amount: int) -> str:
    currency = (forms.text(params, "currency", required=True) or "").lower()
    if len(currency) != 3 or not currency.isalpha():
        raise invalid(f"Invalid currency: {currency}.", param="currency")
    minimum = _MINIMUM.get(currency, 1)
    if amount < minimum:
        raise invalid(f"Amount must be at least {minimum} {currency} (smallest unit).",
                      param="amount", code="amount_too_small")
    return currency


def _payment_method_types(params: Obj) -> tuple[list[str], Obj | None]:
    automatic = forms.mapping(params, "automatic_payment_methods")
    types = forms.string_list(params, "payment_method_types")
    if automatic is not None and types is not None:
        raise invalid("You may only specify one of these parameters: automatic_payment_methods, "
                      "payment_method_types.", param="automatic_payment_methods")
    if types is not None and (not types or any(t not in _TYPES for t in types)):
        raise invalid("The stand-in supports the 'card' and 'promptpay' payment method types.",
                      param="payment_method_types", code="payment_method_invalid_parameter")
    if automatic is not None:
        enabled = forms.boolean(automatic, "enabled")
        return ["card"], {"allow_redirects": automatic.get("allow_redirects", "always"),
                          "enabled": enabled}
    return types or ["card"], None


def _payment_method(state: StandinState, params: Obj) -> Obj | None:
    """`payment_method` (an id or a test token), or one made from `payment_method_data`."""
    data = forms.mapping(params, "payment_method_data")
    pm_id = forms.text(params, "payment_method")
    if data is not None and pm_id:
        raise invalid("You may only specify one of these parameters: payment_method, "
                      "payment_method_data.", param="payment_method_data")
    if data is not None:
        return promptpay.payment_method_from_data(state, data)
    return resolve_payment_method(state, pm_id) if pm_id else None


def _options(params: Obj) -> Obj:
    return {"off_session": forms.text(params, "off_session") not in (None, "false"),
            "return_url": forms.text(params, "return_url")}


def create_payment_intent(state: StandinState, params: Obj, ctx: RequestContext) -> Obj:
    forms.check_allowed(params, _CREATE_PARAMS)
    amount = _amount(params)
    currency = _currency(params, amount)
    types, automatic = _payment_method_types(params)
    customer_id = forms.text(params, "customer")
    if customer_id is not None:
        cus = state.get("customers", customer_id, "customer")
        if cus.get("deleted"):
            raise invalid(f"No such customer: '{customer_id}'", param="customer",
                          code="resource_missing")
    capture = forms.choice(params, "capture_method", ("automatic", "automatic_async"),
                           "automatic")
    confirm = forms.boolean(params, "confirm")
    if "off_session" in params and not confirm:
        raise invalid("You can only use `off_session` when `confirm` is true.",
                      param="off_session")
    pm = _payment_method(state, params)
    pi = objects.payment_intent(amount, currency, forms.merge_metadata({}, params), {
        "automatic_payment_methods": automatic, "capture_method": capture,
        "customer": customer_id, "description": forms.text(params, "description"),
        "payment_method": pm["id"] if pm else None, "payment_method_types": types,
        "receipt_email": forms.text(params, "receipt_email"),
        "setup_future_usage": forms.choice(params, "setup_future_usage",
                                           ("off_session", "on_session")),
        "statement_descriptor_suffix": forms.text(params, "statement_descriptor_suffix"),
        "status": "requires_confirmation" if pm else "requires_payment_method",
    })
    options = pi["payment_method_options"]
    pi["payment_method_options"] = {t: options.get(t, {}) for t in types}
    state.payment_intents[pi["id"]] = pi
    state.emit("payment_intent.created", pi, ctx)
    if confirm:
        _confirm(state, pi, ctx, **_options(params))
    return pi


def retrieve_payment_intent(state: StandinState, params: Obj, ctx: RequestContext,
                            id: str) -> Obj:
    return state.get("payment_intents", id, "intent")


def update_payment_intent(state: StandinState, params: Obj, ctx: RequestContext,
                          id: str) -> Obj:
    forms.check_allowed(params, ("amount", "currency", "customer", "metadata", "description",
                                 "payment_method", "receipt_email", "setup_future_usage",
                                 "statement_descriptor_suffix"))
    pi = state.get("payment_intents", id, "intent")
    if pi["status"] not in _CONFIRMABLE:
        raise unexpected_state(f"This PaymentIntent's status is {pi['status']} and it cannot "
                               "be updated.", "payment_intent_unexpected_state")
    if "amount" in params:
        pi["amount"] = _amount(params)
    if "customer" in params:
        pi["customer"] = forms.text(params, "customer")
        if pi["customer"] is not None:
            state.get("customers", pi["customer"], "customer")
    for name in ("description", "receipt_email", "statement_descriptor_suffix"):
        if name in params:
            pi[name] = forms.text(params, name)
    if "payment_method" in params:
        pm_id = forms.text(params, "payment_method")
        pi["payment_method"] = resolve_payment_method(state, pm_id)["id"] if pm_id else None
        pi["status"] = "requires_confirmation" if pi["payment_method"] else \
            "requires_payment_method"
    pi["metadata"] = forms.merge_metadata(pi["metadata"], params)
    return pi


def confirm_payment_intent(state: StandinState, params: Obj, ctx: RequestContext,
                           id: str) -> Obj:
    forms.check_allowed(params, _CONFIRM_PARAMS)
    pi = state.get("payment_intents", id, "intent")
    if pi["status"] not in _CONFIRMABLE:
        raise unexpected_state(
            f"You cannot confirm this PaymentIntent because it has a status of {pi['status']}.",
            "payment_intent_unexpected_state")
    pm = _payment_method(state, params)
    if pm is not None:
        pi["payment_method"] = pm["id"]
    if "setup_future_usage" in params:
        pi["setup_future_usage"] = forms.choice(params, "setup_future_usage",
                                                ("off_session", "on_session"))
    _confirm(state, pi, ctx, **_options(params))
    return pi


def _confirm(state: StandinState, pi: Obj, ctx: RequestContext, *, off_session: bool,
             return_url: str | None) -> None:
    if pi["payment_method"] is None:
        raise unexpected_state("You cannot confirm this PaymentIntent because it's missing a "
                               "payment method. To confirm the PaymentIntent with "
                               f"{pi['customer']}, specify a payment method attached to this "
                               "customer along with the customer ID.",
                               "payment_intent_unexpected_state")
    pm = state.get("payment_methods", pi["payment_method"], "payment_method")
    if pm["customer"] is not None and pm["customer"] != pi["customer"]:
        raise invalid("The provided PaymentMethod was previously used with a PaymentIntent "
                      "without Customer attachment, shared with a connected account without "
                      "Customer attachment, or was detached from a Customer. It may not be used "
                      "again.", param="payment_method", code="payment_method_unexpected_state")
    if pm["type"] not in pi["payment_method_types"]:
        raise invalid(f"The PaymentMethod provided ({pm['type']}) is not allowed for this "
                      "PaymentIntent. Please attach a PaymentMethod of one of the following "
                      f"types: {', '.join(pi['payment_method_types'])}.",
                      param="payment_method", code="payment_intent_incompatible_payment_method")
    if pm["type"] == "promptpay":
        promptpay.display_qr_code(state, pi, pm, ctx.base_url, ctx)
        return
    card = state.cards.get(pm["id"])
    if authentication.challenge_needed(card, off_session):
        if off_session:
            charging.authentication_required(state, pi, pm, ctx)
        authentication.require_action(state, pi, return_url, ctx)
        return
    charging.charge(state, pi, pm, ctx, authentication.frictionless(card))


def cancel_payment_intent(state: StandinState, params: Obj, ctx: RequestContext,
                          id: str) -> Obj:
    forms.check_allowed(params, ("cancellation_reason",))
    pi = state.get("payment_intents", id, "intent")
    if pi["status"] not in _CANCELABLE:
        raise unexpected_state(
            f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}. "
            "Only a PaymentIntent with one of the following statuses may be canceled: "
            + ", ".join(_CANCELABLE) + ".", "payment_intent_unexpected_state")
    pi.update({"status": "canceled", "canceled_at": now(),
               "cancellation_reason": forms.choice(
                   params, "cancellation_reason",
                   ("duplicate", "fraudulent", "requested_by_customer", "abandoned"))})
    state.emit("payment_intent.canceled", pi, ctx)
    return pi


def list_payment_intents(state: StandinState, params: Obj, ctx: RequestContext) -> Obj:
    items = forms.matching(state.payment_intents.values(), params, "customer")
    return objects.paginate("/v1/payment_intents", items, params)


def retrieve_charge(state: StandinState, params: Obj, ctx: RequestContext, id: str) -> Obj:
    return state.get("charges", id, "charge")


def list_charges(state: StandinState, params: Obj, ctx: RequestContext) -> Obj:
    items = forms.matching(state.charges.values(), params, "payment_intent", "customer")
    return objects.paginate("/v1/charges", items, params)
