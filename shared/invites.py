"""The `redeem-invite` use case: link the caller to an inviter's code; and the expiry of pending
invites, a schedule of its own (`mimivibe-expire-invites` in qstash/schedules.yml, a task of the
signed `job-consumer` endpoint).

Every rule (once per user, the 7-day window, own code, cycles, the 30-day expiry) lives in the
SQL function `public.redeem_invite`, granted to service_role only: the caller's id comes from the
verified access token, and the rate limit is counted first, so the app cannot guess codes over
REST faster than the limit allows. SQL errors arrive as project SQLSTATEs (MV010..MV014) and
become docs/API.md's codes in `shared.db.execute`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import AppError
from shared.request_model import RequestModel

if TYPE_CHECKING:
    from shared.access_tokens import AuthenticatedUser
    from shared.db import Database

REDEEM_FUNCTION = "redeem_invite"
EXPIRE_FUNCTION = "expire_pending_invites"


class RedeemInviteRequest(RequestModel):
    # Generous bounds: the SQL function normalises case, spaces and dashes, and an unknown code
    # is 404 invite_not_found, not a validation error.
    invite_code: str = Field(min_length=1, max_length=64)


class RedeemInviteResponse(BaseModel):
    model_config = ConfigDict(defer_build=True)

    invite_id: uuid.UUID
    status: Literal["pending"]
    inviter_id: uuid.UUID
    invite_code: str
    expires_at: datetime


class InviteExpiryReport(BaseModel):
    model_config = ConfigDict(defer_build=True)

    expired_invites: int = 0


class InviteService:
    def __init__(self, *, database: Database) -> None:
        self._database = database

    def redeem(self, user: AuthenticatedUser, request: RedeemInviteRequest) -> RedeemInviteResponse:
        from shared.db import execute

        params = {"p_user_id": str(user.user_id), "p_invite_code": request.invite_code}
        data = execute(self._database.service.rpc(REDEEM_FUNCTION, params)).data
        if not isinstance(data, dict):
            raise AppError("Redeeming the invite code returned no invite.")
        return RedeemInviteResponse.model_validate(data)

    def expire_pending(self) -> InviteExpiryReport:
        """Expire every pending invite past its `expires_at` (SQL decides which, once each)."""
        from shared.db import execute

        expired = execute(self._database.service.rpc(EXPIRE_FUNCTION, {})).data
        return InviteExpiryReport(expired_invites=int(expired or 0))
