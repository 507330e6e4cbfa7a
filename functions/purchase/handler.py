"""POST /purchase: a PaymentIntent for a star package and its pending payment (stars arrive with
the webhook)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.bootstrap import services
from shared.edge import ANY_PATH, Call, Endpoint, serve
from shared.http import Response, json_response

if TYPE_CHECKING:
    from shared.payments import PurchaseRequest


def purchase(call: Call[PurchaseRequest]) -> Response:
    result = services().purchases.purchase(call.caller, call.body, call.idempotency_key)
    # The body carries the PaymentIntent's client secret.
    return json_response(201, result, {"Cache-Control": "no-store"})


handler = serve(
    Endpoint("POST", ANY_PATH, purchase, auth="user", body="shared.payments:PurchaseRequest", idempotency="optional",
             rate_limit="purchase"),
    function="purchase")
