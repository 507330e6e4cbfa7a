"""Customers and payment methods (attach, detach, list, update)."""

from __future__ import annotations

import copy
from typing import Any

from devstack.stripe_standin import forms, objects
from devstack.stripe_standin.cards import DECLINE_MESSAGES, TEST_CARDS
from devstack.stripe_standin.errors import StripeError, card_declined, invalid, no_such
from devstack.stripe_standin.state import RequestContext, StandinState

Obj = dict[str, Any]
_CUSTOMER_FIELDS = ("email", "name", "phone", "description")


def resolve_payment_method(state: StandinState, pm_id: str, param: str = "payment_method") -> Obj:
    """A test token (`pm_card_visa`) yields a fresh payment method, as in Stripe's test mode."""
    card = TEST_CARDS.get(pm_id)
    if card is None:
        return state.get("payment_methods", pm_id, param)
    pm = objects.card_payment_method(card, {})
    state.payment_methods[pm["id"]] = pm
    state.cards[pm["id"]] = card
    return pm


def decline_error(state: StandinState, pm: Obj, extra: Obj) -> StripeError:
    card = state.cards.get(pm["id"])
    decline_code = card.decline_code if card else "generic_decline"
    code = card.error_code if card else "card_declined"
    message = DECLINE_MESSAGES.get(decline_code or "", "Your card was declined.")
    return card_declined(code, decline_code, message,
                         {"payment_method": copy.deepcopy(pm), **extra})


def attach(state: StandinState, pm: Obj, customer_id: str, ctx: RequestContext) -> Obj:
    cus = state.get("customers", customer_id, "customer")
    if cus.get("deleted"):
        raise no_such("customer", customer_id, "customer")
    if pm["customer"] == customer_id:
        return pm
    if pm["customer"] is not None:
        raise invalid("The payment method you provided has already been attached to a "
                      "customer.", code="payment_method_unexpected_state")
    card = state.cards.get(pm["id"])
    if card is not None and card.decline_on_attach:
        raise decline_error(state, pm, {})
    pm["customer"] = customer_id
    state.emit("payment_method.attached", pm, ctx)
    return pm


def _set_default_pm(state: StandinState, cus: Obj, params: Obj) -> None:
    settings = forms.mapping(params, "invoice_settings")
    if settings is None or "default_payment_method" not in settings:
        return
    pm_id = settings["default_payment_method"] or None
    if pm_id is not None:
        pm = state.payment_methods.get(pm_id)
        if pm is None or pm["customer"] != cus["id"]:
            raise invalid(f"No such PaymentMethod: '{pm_id}'",
                          param="invoice_settings[default_payment_method]",
                          code="resource_missing")
    cus["invoice_settings"]["default_payment_method"] = pm_id


def create_customer(state: StandinState, params: Obj, ctx: RequestContext) -> Obj:
    forms.check_allowed(params, (*_CUSTOMER_FIELDS, "metadata", "payment_method",
                                 "invoice_settings", "preferred_locales", "address"))
    fields: dict[str, Any] = {name: forms.text(params, name) for name in _CUSTOMER_FIELDS}
    fields["preferred_locales"] = forms.string_list(params, "preferred_locales")
    cus = objects.customer(fields, forms.merge_metadata({}, params))
    state.customers[cus["id"]] = cus
    state.emit("customer.created", cus, ctx)
    pm_id = forms.text(params, "payment_method")
    if pm_id:
        attach(state, resolve_payment_method(state, pm_id), cus["id"], ctx)
    _set_default_pm(state, cus, params)
    return cus


def retrieve_customer(state: StandinState, params: Obj, ctx: RequestContext, id: str) -> Obj:
    return state.get("customers", id)


def update_customer(state: StandinState, params: Obj, ctx: RequestContext, id: str) -> Obj:
    forms.check_allowed(params, (*_CUSTOMER_FIELDS, "metadata", "invoice_settings",
                                 "preferred_locales", "address"))
    cus = state.get("customers", id)
    if cus.get("deleted"):
        raise no_such("customer", id)
    before = copy.deepcopy(cus)
    for name in _CUSTOMER_FIELDS:
        if name in params:
            cus[name] = forms.text(params, name)
    cus["metadata"] = forms.merge_metadata(cus["metadata"], params)
    _set_default_pm(state, cus, params)
    _emit_updated(state, "customer.updated", cus, before, ctx)
    return cus


def delete_customer(state: StandinState, params: Obj, ctx: RequestContext, id: str) -> Obj:
    cus = state.get("customers", id)
    if cus.get("deleted"):
        raise no_such("customer", id)
    state.emit("customer.deleted", cus, ctx)
    tombstone = {"id": id, "object": "customer", "deleted": True}
    state.customers[id] = tombstone
    return tombstone


def list_customers(state: StandinState, params: Obj, ctx: RequestContext) -> Obj:
    email = forms.text(params, "email")
    items = [c for c in state.customers.values() if not c.get("deleted")
             and (email is None or c["email"] == email)]
    return objects.paginate("/v1/customers", items, params)


def retrieve_payment_method(state: StandinState, params: Obj, ctx: RequestContext,
                            id: str) -> Obj:
    return resolve_payment_method(state, id, "payment_method")


def attach_payment_method(state: StandinState, params: Obj, ctx: RequestContext,
                          id: str) -> Obj:
    forms.check_allowed(params, ("customer",))
    customer_id = forms.text(params, "customer", required=True)
    assert customer_id is not None
    return attach(state, resolve_payment_method(state, id, "payment_method"), customer_id, ctx)


def detach_payment_method(state: StandinState, params: Obj, ctx: RequestContext,
                          id: str) -> Obj:
    forms.check_allowed(params, ())
    pm = state.get("payment_methods", id, "payment_method")
    customer_id = pm["customer"]
    if customer_id is None:
        raise invalid("The payment method you provided is not attached to a customer so "
                      "detachment is impossible.", code="payment_method_unexpected_state")
    pm["customer"] = None
    state.emit("payment_method.detached", pm, ctx, previous={"customer": customer_id})
    cus = state.customers.get(customer_id)
    if cus and cus.get("invoice_settings", {}).get("default_payment_method") == id:
        before = copy.deepcopy(cus)
        cus["invoice_settings"]["default_payment_method"] = None
        _emit_updated(state, "customer.updated", cus, before, ctx)
    return pm


def update_payment_method(state: StandinState, params: Obj, ctx: RequestContext,
                          id: str) -> Obj:
    forms.check_allowed(params, ("billing_details", "card", "metadata", "allow_redisplay"))
    pm = state.get("payment_methods", id, "payment_method")
    before = copy.deepcopy(pm)
    card = forms.mapping(params, "card") or {}
    for name in ("exp_month", "exp_year"):
        if name in card:
            value = forms.integer(card, name)
            if value is None:
                raise invalid(f"Invalid integer: card[{name}]", param=f"card[{name}]")
            pm["card"][name] = value
    billing = forms.mapping(params, "billing_details") or {}
    for name in ("email", "name", "phone"):
        if name in billing:
            pm["billing_details"][name] = forms.text(billing, name)
    if "allow_redisplay" in params:
        pm["allow_redisplay"] = forms.choice(params, "allow_redisplay",
                                             ("always", "limited", "unspecified"))
    pm["metadata"] = forms.merge_metadata(pm["metadata"], params)
    _emit_updated(state, "payment_method.updated", pm, before, ctx)
    return pm


def list_payment_methods(state: StandinState, params: Obj, ctx: RequestContext,
                         id: str | None = None) -> Obj:
    customer_id = id or forms.text(params, "customer")
    kind = forms.text(params, "type")
    if customer_id is not None:
        state.get("customers", customer_id, "customer")
    items = [pm for pm in state.payment_methods.values()
             if pm["customer"] is not None and (customer_id is None or pm["customer"] == customer_id)
             and (kind is None or pm["type"] == kind)]
    url = f"/v1/customers/{id}/payment_methods" if id else "/v1/payment_methods"
    return objects.paginate(url, items, params)


def _previous(before: Obj, after: Obj) -> Obj:
    """Stripe's `previous_attributes`: the old values of changed fields, nested objects narrowed
    to their changed keys."""
    changed: Obj = {}
    for key, old in before.items():
        new = after.get(key)
        if new == old:
            continue
        changed[key] = _previous(old, new) if isinstance(old, dict) and isinstance(new, dict) \
            else old
    return changed


def _emit_updated(state: StandinState, type_: str, obj: Obj, before: Obj,
                  ctx: RequestContext) -> None:
    previous = _previous(before, obj)
    if previous:
        state.emit(type_, obj, ctx, previous=previous)
