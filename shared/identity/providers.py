"""One verifier per configured identity provider: pinned algorithms, issuer, audience, claims."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt import exceptions as jwt_errors

from shared.errors import Unauthorized
from shared.identity.keys import KeySource
from shared.identity.models import Provider, VerifiedIdentity

MAX_EXTERNAL_ID_LENGTH = 255

# PyJWT's errors → the reason reported in the 401's details (never the library's text).
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt_errors.ExpiredSignatureError, "expired"),
    (jwt_errors.ImmatureSignatureError, "not_yet_valid"),
    (jwt_errors.InvalidAudienceError, "wrong_audience"),
    (jwt_errors.InvalidIssuerError, "wrong_issuer"),
    (jwt_errors.InvalidSignatureError, "bad_signature"),
    (jwt_errors.InvalidAlgorithmError, "algorithm_not_allowed"),
    (jwt_errors.MissingRequiredClaimError, "missing_claim"),
    (jwt_errors.InvalidKeyError, "bad_signature"),
    (jwt_errors.DecodeError, "malformed"),
)

ClaimsCheck = Callable[[Mapping[str, Any], float], None]


def invalid_token(reason: str) -> Unauthorized:
    return Unauthorized("The identity token is not valid.", details={"reason": reason})


def _reason(exc: Exception) -> str:
    for cls, reason in _REASONS:
        if isinstance(exc, cls):
            return reason
    return "invalid"


def _text(value: Any, limit: int = 2048) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:limit]
    return None


def _verified_flag(value: Any) -> bool:
    # Some providers send the flag as a string; anything but an explicit true is unverified.
    return value is True or (isinstance(value, str) and value.lower() == "true")


@dataclass(frozen=True)
class ProviderVerifier:
    name: Provider
    issuer: str
    keys: KeySource
    audience: str | None = None
    leeway_seconds: int = 30
    required_claims: tuple[str, ...] = ()
    extra_check: ClaimsCheck | None = None
    picture_claims: tuple[str, ...] = field(default=("picture",))

    def verify(self, token: str, header: dict[str, Any]) -> VerifiedIdentity:
        if header.get("alg") not in self.keys.algorithms:
            raise invalid_token("algorithm_not_allowed")
        key = self.keys.key_for(header)
        required = ["exp", "iat", "iss", "sub", *self.required_claims]
        if self.audience is not None:
            required.append("aud")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=list(self.keys.algorithms),
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_seconds,
                options={"require": required, "verify_aud": self.audience is not None},
            )
        except jwt_errors.PyJWTError as exc:
            raise invalid_token(_reason(exc)) from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > MAX_EXTERNAL_ID_LENGTH:
            raise invalid_token("bad_subject")
        if self.extra_check is not None:
            self.extra_check(claims, time.time())
        return VerifiedIdentity(
            provider=self.name,
            external_id=subject,
            issuer=self.issuer,
            email=_text(claims.get("email"), 320),
            email_verified=_verified_flag(claims.get("email_verified")),
            name=_text(claims.get("name"), 255),
            picture_url=next(
                (p for c in self.picture_claims if (p := _text(claims.get(c))) is not None), None
            ),
        )


def firebase_check(leeway_seconds: int) -> ClaimsCheck:
    """Firebase ID tokens: `auth_time` in the past and a uid of at most 128 characters."""

    def check(claims: Mapping[str, Any], now: float) -> None:
        auth_time = claims.get("auth_time")
        if not isinstance(auth_time, int | float) or isinstance(auth_time, bool):
            raise invalid_token("missing_claim")
        if auth_time > now + leeway_seconds:
            raise invalid_token("not_yet_valid")
        if len(str(claims.get("sub"))) > 128:
            raise invalid_token("bad_subject")

    return check
