"""POST /payment-methods/setup (a SetupIntent to save a card) and DELETE /payment-methods/{id}."""

from __future__ import annotations

from shared.access_tokens import authenticate
from shared.errors import MethodNotAllowed, NotFound
from shared.http import FunctionUrlRequest, Response, adapter, json_response
from shared.payment_methods import SetupRequest, get_payment_methods_service
from shared.payments import read_idempotency_key


def route(request: FunctionUrlRequest) -> Response:
    segments = [s for s in request.raw_path.split("/") if s]
    if len(segments) != 1:
        raise NotFound()
    if segments == ["setup"]:
        if request.method != "POST":
            raise MethodNotAllowed()
        user = authenticate(request)
        request.json_body(SetupRequest, allow_empty=True)
        key = read_idempotency_key(request)
        result = get_payment_methods_service().setup(user, key)
        return json_response(201, result, {"Cache-Control": "no-store"})
    if request.method != "DELETE":
        raise MethodNotAllowed()
    user = authenticate(request)
    get_payment_methods_service().remove(user, segments[0])
    return json_response(204)


handler = adapter(route, function="payment-methods")
