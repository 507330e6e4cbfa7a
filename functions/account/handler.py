"""GET /account/export (everything stored about the caller) and DELETE /account (erase it)."""

from __future__ import annotations

from shared.access_tokens import authenticate
from shared.account import DeleteAccountRequest, get_account_service
from shared.errors import MethodNotAllowed, NotFound
from shared.http import FunctionUrlRequest, Response, adapter, json_response


def route(request: FunctionUrlRequest) -> Response:
    segments = [s for s in request.raw_path.split("/") if s]
    if segments == ["export"]:
        if request.method != "GET":
            raise MethodNotAllowed()
        user = authenticate(request)
        exported = get_account_service().export(user)
        return json_response(200, exported, {"Cache-Control": "no-store"})
    if segments:
        raise NotFound()
    if request.method != "DELETE":
        raise MethodNotAllowed()
    # A repeated deletion with the same token answers with the first erasure.
    user = authenticate(request, allow_erased=True)
    request.json_body(DeleteAccountRequest)
    erased = get_account_service().erase(user)
    return json_response(202, erased, {"Cache-Control": "no-store"})


handler = adapter(route, function="account")
