"""What a verified provider token tells us about the person signing in."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Provider = Literal["clerk", "auth0", "firebase", "custom"]


class VerifiedIdentity(BaseModel):
    """The identity carried by a provider token whose signature and claims were checked."""

    model_config = ConfigDict(frozen=True)

    provider: Provider
    external_id: str
    issuer: str
    email: str | None = None
    email_verified: bool = False
    name: str | None = None
    picture_url: str | None = None
