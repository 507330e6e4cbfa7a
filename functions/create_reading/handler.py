"""POST /create-reading: charge stars and queue a tarot reading, once per Idempotency-Key."""

from __future__ import annotations

from shared.access_tokens import authenticate
from shared.errors import MethodNotAllowed
from shared.http import FunctionUrlRequest, Response, adapter, json_response
from shared.readings import CreateReadingRequest, get_reading_service


def route(request: FunctionUrlRequest) -> Response:
    if request.method != "POST":
        raise MethodNotAllowed()
    user = authenticate(request)
    body = request.json_body(CreateReadingRequest)
    reading = get_reading_service().create(user, request.header("idempotency-key"), body)
    return json_response(202, reading)


handler = adapter(route, function="create-reading")
