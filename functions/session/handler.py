"""POST /session: exchange a provider token (Clerk, Auth0, Firebase, custom) for an access token."""

from __future__ import annotations

from shared.errors import MethodNotAllowed
from shared.http import FunctionUrlRequest, Response, adapter, json_response
from shared.sessions import SessionRequest, get_session_service


def route(request: FunctionUrlRequest) -> Response:
    if request.method != "POST":
        raise MethodNotAllowed()
    body = request.json_body(SessionRequest, allow_empty=True)
    session = get_session_service().start(request.bearer_token(), body)
    # The body carries a bearer token: no cache may keep it.
    return json_response(200, session, {"Cache-Control": "no-store"})


handler = adapter(route, function="session")
