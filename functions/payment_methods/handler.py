"""POST /payment-methods/setup (a SetupIntent to save a card) and DELETE /payment-methods/{id}."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.bootstrap import services
from shared.edge import Call, Endpoint, serve
from shared.http import Response, json_response

if TYPE_CHECKING:
    from shared.payment_methods import SetupRequest


def setup(call: Call[SetupRequest]) -> Response:
    result = services().payment_methods.setup(call.caller, call.idempotency_key)
    return json_response(201, result, {"Cache-Control": "no-store"})


def remove(call: Call[Any]) -> Response:
    services().payment_methods.remove(call.caller, call.params["id"])
    return json_response(204)


handler = serve(
    Endpoint("POST", "/setup", setup, auth="user", body="shared.payment_methods:SetupRequest", allow_empty_body=True,
             idempotency="optional", rate_limit="payment-methods"),
    Endpoint("DELETE", "/{id}", remove, auth="user", rate_limit="payment-methods"),
    function="payment-methods")
