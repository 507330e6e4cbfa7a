"""POST /redeem-invite: link the caller to an inviter's invite code (docs/API.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.bootstrap import services
from shared.edge import ANY_PATH, Call, Endpoint, serve
from shared.http import Response, json_response

if TYPE_CHECKING:
    from shared.invites import RedeemInviteRequest


def redeem(call: Call[RedeemInviteRequest]) -> Response:
    return json_response(200, services().invites.redeem(call.caller, call.body))


handler = serve(
    Endpoint("POST", ANY_PATH, redeem, auth="user", body="shared.invites:RedeemInviteRequest",
             rate_limit="redeem-invite"),
    function="redeem-invite")
