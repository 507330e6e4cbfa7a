"""POST /stripe-webhook: Stripe's signed events, applied exactly once (5xx makes Stripe retry)."""

from __future__ import annotations

from typing import Any

from shared.bootstrap import services
from shared.edge import ANY_PATH, Call, Endpoint, serve
from shared.http import Response, json_response


def receive(call: Call[Any]) -> Response:
    # The raw body, already base64-decoded when the function URL encoded it.
    request = call.request
    result = services().webhooks.handle(request.body, request.header("stripe-signature"))
    return json_response(200, {"received": True, "duplicate": result.duplicate})


handler = serve(Endpoint("POST", ANY_PATH, receive), function="stripe-webhook")
