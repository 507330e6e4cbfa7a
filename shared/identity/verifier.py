"""Route a provider token to its provider by issuer, then verify it there.

The issuer is read from the unverified payload only to pick the verifier; that verifier then
checks the issuer again together with the signature, so a forged `iss` gains nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import jwt
from jwt import exceptions as jwt_errors

from shared.errors import ConfigError, Unauthorized
from shared.identity.models import VerifiedIdentity
from shared.identity.providers import ProviderVerifier, invalid_token

MAX_TOKEN_BYTES = 16 * 1024


class IdentityVerifier:
    def __init__(self, providers: Iterable[ProviderVerifier]) -> None:
        self._by_issuer: dict[str, ProviderVerifier] = {}
        for provider in providers:
            if provider.issuer in self._by_issuer:
                raise ConfigError(f"Two identity providers share the issuer {provider.issuer}.")
            self._by_issuer[provider.issuer] = provider

    @property
    def issuers(self) -> dict[str, str]:
        return {issuer: p.name for issuer, p in self._by_issuer.items()}

    def verify(self, token: str) -> VerifiedIdentity:
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise invalid_token("malformed")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt_errors.PyJWTError as exc:
            raise invalid_token("malformed") from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise invalid_token("algorithm_not_allowed")
        issuer = unverified.get("iss")
        provider = self._by_issuer.get(issuer) if isinstance(issuer, str) else None
        if provider is None:
            raise Unauthorized(
                "The identity token's issuer is not accepted.",
                details={"reason": "unknown_issuer"},
            )
        return provider.verify(token, header)
