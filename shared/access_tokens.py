"""The access token `session` mints and every other user function accepts.

A Supabase-style JWT (HS256 with the project's JWT secret): `sub` = users.id,
`role` = `authenticated`, `aud` = `authenticated`, `iat`, `exp`. PostgREST accepts the same token,
so the app uses it against the REST API too. PyJWT is imported on first use, keeping the
handlers' cold imports light.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from shared import observability
from shared.errors import Unauthorized
from shared.http import FunctionUrlRequest
from shared.settings import Settings, get_settings

ALGORITHM = "HS256"
ROLE = "authenticated"
AUDIENCE = "authenticated"


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_at: int


@dataclass(frozen=True)
class AuthenticatedUser:
    """The caller of a user function, proven by a valid access token."""

    user_id: uuid.UUID
    access_token: str
    expires_at: int
    claims: dict[str, Any]


def _secret(secret: SecretStr | str) -> str:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret


def mint_access_token(
    user_id: uuid.UUID | str,
    *,
    secret: SecretStr | str,
    ttl_seconds: int = 3600,
    issuer: str | None = None,
    now: int | None = None,
    extra_claims: dict[str, Any] | None = None,
) -> AccessToken:
    import jwt

    issued_at = int(time.time()) if now is None else now
    expires_at = issued_at + ttl_seconds
    claims: dict[str, Any] = {
        **(extra_claims or {}),
        "sub": str(uuid.UUID(str(user_id))),
        "role": ROLE,
        "aud": AUDIENCE,
        "iat": issued_at,
        "exp": expires_at,
    }
    if issuer:
        claims["iss"] = issuer
    token = jwt.encode(claims, _secret(secret), algorithm=ALGORITHM, headers={"typ": "JWT"})
    return AccessToken(token=token, expires_at=expires_at)


def verify_access_token(
    token: str, *, secret: SecretStr | str, leeway_seconds: int = 30
) -> AuthenticatedUser:
    """Check signature, expiry, audience and role; anything wrong → 401 `unauthorized`."""
    import jwt

    try:
        claims = jwt.decode(
            token,
            _secret(secret),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            leeway=leeway_seconds,
            options={"require": ["exp", "iat", "sub", "aud", "role"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized() from exc
    # The anon and service-role keys are signed with the same secret: only user tokens pass.
    if claims.get("role") != ROLE:
        raise Unauthorized()
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except ValueError as exc:
        raise Unauthorized() from exc
    return AuthenticatedUser(
        user_id=user_id, access_token=token, expires_at=int(claims["exp"]), claims=claims
    )


ErasedCheck = Callable[[AuthenticatedUser], bool]


def account_erased(user: AuthenticatedUser) -> bool:
    """Whether the token's account was deleted (`users.erased_at`), read with the token itself
    so RLS shows the caller their own row only. A signature stays valid until the token
    expires; the erasure has to be looked up."""
    from shared.bootstrap import services
    from shared.db import execute

    rows = execute(services().database.for_user(user.access_token).table("users")
                   .select("erased_at").eq("id", str(user.user_id))).data or []
    return bool(rows) and rows[0].get("erased_at") is not None


_erased_check: ErasedCheck = account_erased


def set_erased_check(check: ErasedCheck | None) -> None:
    """Replace the erasure lookup (tests without a database), or restore it with None."""
    global _erased_check
    _erased_check = check or account_erased


def authenticate(
    request: FunctionUrlRequest, settings: Settings | None = None, *, allow_erased: bool = False
) -> AuthenticatedUser:
    """The one dependency of every user function: `Authorization: Bearer <access token>`.

    The token of a deleted account is refused like a forged one (401), except where
    `allow_erased` says the caller handles it (a repeated `DELETE /account` answers with the
    first erasure)."""
    token = request.bearer_token()
    if token is None:
        raise Unauthorized()
    settings = settings or get_settings()
    user = verify_access_token(
        token,
        secret=settings.supabase_jwt_secret,
        leeway_seconds=settings.token_leeway_seconds,
    )
    observability.bind(user_id=user.user_id)
    if not allow_erased and _erased_check(user):
        raise Unauthorized("This account was deleted.")
    return user
