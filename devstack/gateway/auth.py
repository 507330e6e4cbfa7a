"""Bearer-token verification with PostgREST v13's outcomes (HS256 secret, 30 s clock skew)."""

from __future__ import annotations

import time
from typing import Any

import jwt

from devstack.gateway.errors import ApiError

_SKEW = 30
_HMAC_ALGS = ("HS256", "HS384", "HS512")
_CACHE_MAX = 4096


def _jwt_error(code: str, message: str, details: str | None = None) -> ApiError:
    header = f'Bearer error="invalid_token", error_description="{message}"'
    return ApiError(401, code, message, details, headers={"WWW-Authenticate": header})


class TokenVerifier:
    """Verifies tokens once and remembers the claims until they expire (like PostgREST's JWT cache)."""

    def __init__(self, secret: str, audience: str | None = None) -> None:
        self._secret = secret
        self._audience = audience
        self._cache: dict[str, tuple[dict[str, Any], float]] = {}

    def claims(self, token: str) -> dict[str, Any]:
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None:
            claims, expires = cached
            if now <= expires + _SKEW:
                return claims
            del self._cache[token]
        claims = self._verify(token)
        exp = claims.get("exp")
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[token] = (claims, float(exp) if exp is not None else now + 300)
        return claims

    def _verify(self, token: str) -> dict[str, Any]:
        if not token:
            raise _jwt_error("PGRST301", "Empty JWT is sent in Authorization header")
        parts = token.split(".")
        if len(parts) != 3:
            raise _jwt_error("PGRST301", f"Expected 3 parts in JWT; got {len(parts)}")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _jwt_error("PGRST301", "JWT cryptographic operation failed") from exc
        if header.get("alg") not in _HMAC_ALGS:
            raise _jwt_error("PGRST301", "Wrong or unsupported encoding algorithm")
        for claim in ("exp", "nbf", "iat"):
            value = unverified.get(claim)
            if claim in unverified and (isinstance(value, bool)
                                        or not isinstance(value, int | float)):
                raise _jwt_error("PGRST303", f"The JWT '{claim}' claim must be a number")
        return self._decode(token, str(header["alg"]))

    def _decode(self, token: str, alg: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=[alg], leeway=_SKEW, audience=self._audience,
                options={"verify_aud": self._audience is not None, "verify_iat": True},
            )
        except jwt.InvalidSignatureError as exc:
            raise _jwt_error("PGRST301", "No suitable key or wrong key type",
                             "None of the keys was able to decode the JWT") from exc
        except jwt.ExpiredSignatureError as exc:
            raise _jwt_error("PGRST303", "JWT expired") from exc
        except jwt.ImmatureSignatureError as exc:
            message = "JWT issued at future" if "iat" in str(exc) else "JWT not yet valid"
            raise _jwt_error("PGRST303", message) from exc
        except (jwt.InvalidAudienceError, jwt.MissingRequiredClaimError) as exc:
            raise _jwt_error("PGRST303", "JWT not in audience") from exc
        except jwt.PyJWTError as exc:
            raise _jwt_error("PGRST301", "JWT cryptographic operation failed") from exc
        return claims


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer` header (scheme case-insensitive), else None."""
    if authorization is None:
        return None
    scheme, _, rest = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return rest.strip()
