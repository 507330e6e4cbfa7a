"""POST /payment-methods/setup (a SetupIntent to save a card) and DELETE /payment-methods/{id}."""

from __future__ import annotations

from typing import Any

from shared.edge import Call, Endpoint, serve
from shared.http import Response, json_response
from shared.payment_methods import SetupRequest, get_payment_methods_service


def setup(call: Call[SetupRequest]) -> Response:
    result = get_payment_methods_service().setup(call.caller, call.idempotency_key)
    return json_response(201, result, {"Cache-Control": "no-store"})


def remove(call: Call[Any]) -> Response:
    get_payment_methods_service().remove(call.caller, call.params["id"])
    return json_response(204)


handler = serve(
    Endpoint("POST", "/setup", setup, auth="user", body=SetupRequest, allow_empty_body=True,
             idempotency="optional", rate_limit="payment-methods"),
    Endpoint("DELETE", "/{id}", remove, auth="user", rate_limit="payment-methods"),
    function="payment-methods")
