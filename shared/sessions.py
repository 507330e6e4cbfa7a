"""The `session` use case: provider token in, user upserted, Supabase access token out.

Order matters: the token is verified before the rate limit is counted (a forged token must not
spend someone else's budget) and before anything touches the database.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from shared.access_tokens import mint_access_token
from shared.errors import AppError, Unauthorized
from shared.request_model import RequestModel

if TYPE_CHECKING:
    from shared.db import Database
    from shared.identity import IdentityVerifier
    from shared.ratelimit import RateLimiter

RATE_LIMIT_SCOPE = "session"
UPSERT_FUNCTION = "upsert_user_from_identity"


class SessionRequest(RequestModel):
    """Optional profile, used only where the provider token carries none."""

    name: str | None = Field(default=None, max_length=255)
    picture_url: str | None = Field(default=None, max_length=2048)


class SessionUser(BaseModel):
    model_config = ConfigDict(defer_build=True)

    id: uuid.UUID
    email: str | None
    name: str | None
    picture_url: str | None
    star_balance: int
    coin_balance: int
    invite_code: str
    tier: str
    total_invites: int
    invited_by: uuid.UUID | None
    created_at: datetime


class SessionResponse(BaseModel):
    model_config = ConfigDict(defer_build=True)

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: int
    user: SessionUser


class SessionService:
    def __init__(
        self,
        *,
        verifier: IdentityVerifier,
        database: Database,
        rate_limiter: RateLimiter | None,
        jwt_secret: SecretStr,
        ttl_seconds: int = 3600,
        issuer: str | None = None,
    ) -> None:
        self._verifier = verifier
        self._database = database
        self._rate_limiter = rate_limiter
        self._jwt_secret = jwt_secret
        self._ttl_seconds = ttl_seconds
        self._issuer = issuer

    def start(self, provider_token: str | None, request: SessionRequest) -> SessionResponse:
        from shared.db import execute

        if not provider_token:
            raise Unauthorized("An identity provider token is required.")
        identity = self._verifier.verify(provider_token)
        if self._rate_limiter is not None:
            # Hashed: provider subjects may be emails or phone numbers; keys must not carry them.
            subject = f"{identity.provider}:{identity.external_id}".encode()
            self._rate_limiter.hit(RATE_LIMIT_SCOPE, hashlib.sha256(subject).hexdigest()[:32])
        params: dict[str, Any] = {
            "p_provider": identity.provider,
            "p_external_id": identity.external_id,
            "p_email": identity.email,
            "p_email_verified": identity.email_verified,
            "p_name": identity.name,
            "p_picture_url": identity.picture_url,
            "p_fallback_name": request.name,
            "p_fallback_picture_url": request.picture_url,
        }
        result = execute(self._database.service.rpc(UPSERT_FUNCTION, params))
        data = result.data
        if not isinstance(data, dict) or not isinstance(data.get("user"), dict):
            raise AppError("The sign-in returned no user.")
        user = SessionUser.model_validate(data["user"])
        token = mint_access_token(
            user.id, secret=self._jwt_secret, ttl_seconds=self._ttl_seconds, issuer=self._issuer
        )
        return SessionResponse(access_token=token.token, expires_at=token.expires_at, user=user)
