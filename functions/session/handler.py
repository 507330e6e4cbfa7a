"""POST /session: exchange a provider token (Clerk, Auth0, Firebase, custom) for an access token."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.bootstrap import services
from shared.edge import ANY_PATH, Call, Endpoint, serve
from shared.http import Response, json_response

if TYPE_CHECKING:
    from shared.sessions import SessionRequest


def start(call: Call[SessionRequest]) -> Response:
    session = services().sessions.start(call.request.bearer_token(), call.body)
    # The body carries a bearer token: no cache may keep it.
    return json_response(200, session, {"Cache-Control": "no-store"})


handler = serve(Endpoint("POST", ANY_PATH, start, body="shared.sessions:SessionRequest", allow_empty_body=True),
                function="session")
