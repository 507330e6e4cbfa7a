"""The `/v1` HTTP surface: routing, API-key auth, form decoding, idempotency and `expand[]`.

Stripe's idempotency: a POST's `Idempotency-Key` stores the first result (successes and card
declines; not parameter validation failures). The same key with the same endpoint and params
replays it (`Idempotent-Replayed: true`); anything else is a 400 `idempotency_error`."""

from __future__ import annotations

import base64
import hmac
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from devstack.stripe_standin import (
    customer_sessions,
    customers,
    disputes,
    forms,
    objects,
    payments,
    refunds,
    setup_intents,
)
from devstack.stripe_standin.errors import StripeError, authentication, idempotency
from devstack.stripe_standin.state import (
    IdempotentResult,
    RequestContext,
    StandinState,
    new_id,
)

if TYPE_CHECKING:
    from devstack.stripe_standin.app import Standin

Handler = Callable[..., dict[str, Any]]


def retrieve_event(state: StandinState, params: dict[str, Any], ctx: RequestContext,
                   id: str) -> dict[str, Any]:
    return state.get("events", id)


def list_events(state: StandinState, params: dict[str, Any],
                ctx: RequestContext) -> dict[str, Any]:
    items = forms.matching(state.events.values(), params, "type")
    return objects.paginate("/v1/events", items, params)


_ID = r"(?P<id>[^/]+)"
_TABLE: list[tuple[str, str, Handler]] = [
    ("POST", "/v1/customers", customers.create_customer),
    ("GET", "/v1/customers", customers.list_customers),
    ("GET", f"/v1/customers/{_ID}", customers.retrieve_customer),
    ("POST", f"/v1/customers/{_ID}", customers.update_customer),
    ("DELETE", f"/v1/customers/{_ID}", customers.delete_customer),
    ("GET", f"/v1/customers/{_ID}/payment_methods", customers.list_payment_methods),
    ("GET", "/v1/payment_methods", customers.list_payment_methods),
    ("GET", f"/v1/payment_methods/{_ID}", customers.retrieve_payment_method),
    ("POST", f"/v1/payment_methods/{_ID}", customers.update_payment_method),
    ("POST", f"/v1/payment_methods/{_ID}/attach", customers.attach_payment_method),
    ("POST", f"/v1/payment_methods/{_ID}/detach", customers.detach_payment_method),
    ("POST", "/v1/payment_intents", payments.create_payment_intent),
    ("GET", "/v1/payment_intents", payments.list_payment_intents),
    ("GET", f"/v1/payment_intents/{_ID}", payments.retrieve_payment_intent),
    ("POST", f"/v1/payment_intents/{_ID}", payments.update_payment_intent),
    ("POST", f"/v1/payment_intents/{_ID}/confirm", payments.confirm_payment_intent),
    ("POST", f"/v1/payment_intents/{_ID}/cancel", payments.cancel_payment_intent),
    ("GET", "/v1/charges", payments.list_charges),
    ("GET", f"/v1/charges/{_ID}", payments.retrieve_charge),
    ("POST", "/v1/refunds", refunds.create_refund),
    ("GET", "/v1/refunds", refunds.list_refunds),
    ("GET", f"/v1/refunds/{_ID}", refunds.retrieve_refund),
    ("POST", f"/v1/refunds/{_ID}/cancel", refunds.cancel_refund),
    ("POST", "/v1/customer_sessions", customer_sessions.create_customer_session),
    ("POST", "/v1/setup_intents", setup_intents.create_setup_intent),
    ("GET", "/v1/setup_intents", setup_intents.list_setup_intents),
    ("GET", f"/v1/setup_intents/{_ID}", setup_intents.retrieve_setup_intent),
    ("POST", f"/v1/setup_intents/{_ID}/confirm", setup_intents.confirm_setup_intent),
    ("POST", f"/v1/setup_intents/{_ID}/cancel", setup_intents.cancel_setup_intent),
    ("GET", "/v1/disputes", disputes.list_disputes),
    ("GET", f"/v1/disputes/{_ID}", disputes.retrieve_dispute),
    ("POST", f"/v1/disputes/{_ID}", disputes.update_dispute),
    ("POST", f"/v1/disputes/{_ID}/close", disputes.accept_dispute),
    ("GET", "/v1/events", list_events),
    ("GET", f"/v1/events/{_ID}", retrieve_event),
]
_ROUTES = [(method, re.compile(path), handler) for method, path, handler in _TABLE]


def _route(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    for route_method, pattern, handler in _ROUTES:
        match = pattern.fullmatch(path)
        if match and route_method == method:
            return handler, match.groupdict()
    raise StripeError(404, "invalid_request_error",
                      f"Unrecognized request URL ({method}: {path}). Please see "
                      "https://stripe.com/docs or we can help at https://support.stripe.com/.")


def presented_key(request: Request) -> str | None:
    """Stripe takes the secret key as Bearer or as the Basic-auth user name."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value).decode().split(":", 1)[0] or None
        except (ValueError, UnicodeDecodeError):
            return None
    return None


def check_key(request: Request, api_key: str) -> None:
    key = presented_key(request)
    if key is None:
        raise authentication("You did not provide an API key. You need to provide your API key "
                             "in the Authorization header, using Bearer auth (e.g. "
                             "'Authorization: Bearer YOUR_SECRET_KEY').")
    if not hmac.compare_digest(key.encode(), api_key.encode()):
        raise authentication(f"Invalid API Key provided: {key[:8]}{'*' * 8}{key[-4:]}")


def render(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, indent=2).encode()


async def handle(request: Request) -> Response:
    standin: Standin = request.app.state.standin
    state = standin.state
    request_id = new_id("req", 14)
    headers = {"Request-Id": request_id,
               "Stripe-Version": request.headers.get("stripe-version", state.api_version)}
    method, path = request.method, request.url.path
    key = request.headers.get("idempotency-key") if method == "POST" else None
    if key:
        headers["Idempotency-Key"] = key
    try:
        check_key(request, standin.settings.api_key.get_secret_value())
        pairs = parse_qsl(request.url.query, keep_blank_values=True)
        if method == "POST":
            pairs += parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)
        params = forms.decode(pairs)
        handler, groups = _route(method, path)
    except StripeError as exc:
        return Response(render(exc.body()), exc.status, headers, "application/json")
    ctx = RequestContext(request_id, key, str(request.base_url))
    with state.lock:
        if key:
            previous = state.idempotency.get(key)
            if previous is not None:
                return _replay(previous, method, path, params, key=key, headers=headers)
        status, body, save = _execute(state, handler, params, ctx, groups)
        if key and save:
            state.idempotency[key] = IdempotentResult(method, path, params, status, body)
    return Response(body, status, headers, "application/json")


def _execute(state: StandinState, handler: Handler, params: dict[str, Any], ctx: RequestContext,
             groups: dict[str, str]) -> tuple[int, bytes, bool]:
    try:
        result = handler(state, params, ctx, **groups)
        expand = forms.string_list(params, "expand") or []
        return 200, render(objects.expand(result, expand, state.find)), True
    except StripeError as exc:
        return exc.status, render(exc.body()), exc.saved


def _replay(previous: IdempotentResult, method: str, path: str, params: dict[str, Any], *,
            key: str, headers: dict[str, str]) -> Response:
    if (previous.method, previous.path) != (method, path):
        error = idempotency(
            "Keys for idempotent requests can only be used for the same endpoint they were "
            f"first used for ('{previous.path}' vs '{path}'). Try using a key other than "
            f"'{key}' if you meant to execute a different request.")
    elif previous.params != params:
        error = idempotency(
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with. Try using a key other than '{key}' if you meant to execute a "
            "different request.")
    else:
        return Response(previous.body, previous.status,
                        {**headers, "Idempotent-Replayed": "true"}, "application/json")
    return Response(render(error.body()), error.status, headers, "application/json")

