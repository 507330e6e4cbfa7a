"""GET /account/export (everything stored about the caller) and DELETE /account (erase it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.bootstrap import services
from shared.edge import Call, Endpoint, serve
from shared.http import Response, json_response, preferred_language

if TYPE_CHECKING:
    from shared.account import DeleteAccountRequest


def export(call: Call[Any]) -> Response:
    exported = services().account.export(call.caller)
    return json_response(200, exported, {"Cache-Control": "no-store"})


def erase(call: Call[DeleteAccountRequest]) -> Response:
    language = preferred_language(call.request.header("accept-language"))
    erased = services().account.erase(call.caller, language=language)
    return json_response(202, erased, {"Cache-Control": "no-store", "Content-Language": language,
                                       "Vary": "Accept-Language"})


handler = serve(
    Endpoint("GET", "/export", export, auth="user", rate_limit="account"),
    # A repeated deletion with the same token answers with the first erasure.
    Endpoint("DELETE", "/", erase, auth="user-or-erased",
             body="shared.account:DeleteAccountRequest", rate_limit="account"),
    function="account")
