"""POST /stripe-webhook: Stripe's signed events, applied exactly once (5xx makes Stripe retry)."""

from __future__ import annotations

from shared.errors import MethodNotAllowed
from shared.http import FunctionUrlRequest, Response, adapter, json_response
from shared.stripe_webhooks import get_webhook_processor


def route(request: FunctionUrlRequest) -> Response:
    if request.method != "POST":
        raise MethodNotAllowed()
    # request.body is the raw body, already base64-decoded when the function URL encoded it.
    result = get_webhook_processor().handle(request.body, request.header("stripe-signature"))
    return json_response(200, {"received": True, "duplicate": result.duplicate})


handler = adapter(route, function="stripe-webhook")
