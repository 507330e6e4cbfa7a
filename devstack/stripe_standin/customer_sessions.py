"""Customer Sessions: a short-lived client secret that lets the app's PaymentSheet (the mobile
payment element) show, reuse, save and remove the customer's saved cards."""

from __future__ import annotations

import secrets
from typing import Any

from devstack.stripe_standin import forms
from devstack.stripe_standin.errors import invalid, no_such
from devstack.stripe_standin.state import RequestContext, StandinState, now

Obj = dict[str, Any]
LIFETIME_SECONDS = 30 * 60
_COMPONENTS = ("active_entitlements", "buy_button", "customer_portal", "customer_sheet",
               "mobile_payment_element", "payment_element", "pricing_table")
_FEATURES = ("payment_method_allow_redisplay_filters", "payment_method_redisplay",
             "payment_method_remove", "payment_method_save",
             "payment_method_save_allow_redisplay_override")


def _component(requested: Obj | None, name: str) -> Obj:
    enabled = forms.boolean(requested or {}, "enabled")
    component: Obj = {"enabled": enabled}
    if name == "mobile_payment_element":
        features = forms.mapping(requested or {}, "features") or {}
        unknown = set(features) - set(_FEATURES)
        if unknown:
            raise invalid(f"Received unknown parameter: components[{name}][features]"
                          f"[{sorted(unknown)[0]}]", code="parameter_unknown")
        component["features"] = {
            "payment_method_allow_redisplay_filters":
                forms.string_list(features, "payment_method_allow_redisplay_filters")
                or ["always"],
            "payment_method_redisplay": forms.text(features, "payment_method_redisplay")
                or "disabled",
            "payment_method_remove": forms.text(features, "payment_method_remove") or "disabled",
            "payment_method_save": forms.text(features, "payment_method_save") or "disabled",
            "payment_method_save_allow_redisplay_override": forms.text(
                features, "payment_method_save_allow_redisplay_override"),
        } if enabled else None
    return component


def create_customer_session(state: StandinState, params: Obj, ctx: RequestContext) -> Obj:
    forms.check_allowed(params, ("customer", "components"))
    customer_id = forms.text(params, "customer", required=True)
    assert customer_id is not None
    cus = state.get("customers", customer_id, "customer")
    if cus.get("deleted"):
        raise no_such("customer", customer_id, "customer")
    requested = forms.mapping(params, "components") or {}
    unknown = set(requested) - set(_COMPONENTS)
    if unknown:
        raise invalid(f"Received unknown parameter: components[{sorted(unknown)[0]}]",
                      code="parameter_unknown")
    components = {name: _component(forms.mapping(requested, name), name)
                  for name in _COMPONENTS}
    if not any(c["enabled"] for c in components.values()):
        raise invalid("At least one component must be enabled.", param="components")
    created = now()
    return {"object": "customer_session",
            "client_secret": f"cuss_secret_{secrets.token_urlsafe(36)}",
            "components": components, "created": created, "customer": customer_id,
            "expires_at": created + LIFETIME_SECONDS, "livemode": False}
