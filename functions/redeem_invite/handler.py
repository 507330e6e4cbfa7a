"""POST /redeem-invite: link the caller to an inviter's invite code (docs/api.md)."""

from __future__ import annotations

from shared.access_tokens import authenticate
from shared.errors import MethodNotAllowed
from shared.http import FunctionUrlRequest, Response, adapter, json_response
from shared.invites import RedeemInviteRequest, get_invite_service


def route(request: FunctionUrlRequest) -> Response:
    if request.method != "POST":
        raise MethodNotAllowed()
    user = authenticate(request)
    body = request.json_body(RedeemInviteRequest)
    invite = get_invite_service().redeem(user, body)
    return json_response(200, invite)


handler = adapter(route, function="redeem-invite")
