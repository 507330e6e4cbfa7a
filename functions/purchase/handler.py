"""POST /purchase: a PaymentIntent for a star package and its pending payment (stars arrive with
the webhook)."""

from __future__ import annotations

from shared.access_tokens import authenticate
from shared.errors import MethodNotAllowed
from shared.http import FunctionUrlRequest, Response, adapter, json_response
from shared.payments import PurchaseRequest, get_purchase_service, read_idempotency_key


def route(request: FunctionUrlRequest) -> Response:
    if request.method != "POST":
        raise MethodNotAllowed()
    user = authenticate(request)
    body = request.json_body(PurchaseRequest)
    key = read_idempotency_key(request)
    result = get_purchase_service().purchase(user, body, key)
    # The body carries the PaymentIntent's client secret.
    return json_response(201, result, {"Cache-Control": "no-store"})


handler = adapter(route, function="purchase")
