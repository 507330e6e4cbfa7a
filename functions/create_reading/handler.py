"""POST /create-reading: charge stars and queue a tarot reading, once per Idempotency-Key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.bootstrap import services
from shared.edge import ANY_PATH, Call, Endpoint, serve
from shared.http import Response, json_response

if TYPE_CHECKING:
    from shared.readings import CreateReadingRequest


def create(call: Call[CreateReadingRequest]) -> Response:
    key = call.idempotency_key
    assert key is not None  # required by the endpoint
    return json_response(202, services().readings.create(call.caller, key, call.body))


handler = serve(
    Endpoint("POST", ANY_PATH, create, auth="user", body="shared.readings:CreateReadingRequest",
             idempotency="required", rate_limit="create-reading"),
    function="create-reading")
