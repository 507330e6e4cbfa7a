"""Where a provider's verification key comes from: a JWKS endpoint or a shared HS256 secret.

JWKS are fetched lazily (first token), cached by PyJWKClient, and refetched on an unknown `kid`
at most once per cooldown, so a stream of forged `kid`s cannot turn into a fetch per request.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError, PyJWKSetError
from pydantic import SecretStr

from shared.errors import ServiceUnavailable, Unauthorized

logger = logging.getLogger("mimivibe.identity")


class KeySource(Protocol):
    """The verification key for a token header, and the algorithms that key may verify."""

    algorithms: tuple[str, ...]

    def key_for(self, header: dict[str, Any]) -> PyJWK | bytes: ...


class JwksKeySource:
    def __init__(
        self,
        url: str,
        algorithms: tuple[str, ...] = ("RS256",),
        *,
        lifespan_seconds: float = 600.0,
        cooldown_seconds: float = 10.0,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.url = url
        self.algorithms = algorithms
        self._client = PyJWKClient(
            url,
            cache_jwk_set=True,
            lifespan=lifespan_seconds,
            cooldown_duration=cooldown_seconds,
            timeout=timeout_seconds,
        )

    def key_for(self, header: dict[str, Any]) -> PyJWK:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("The identity token has no key id.", details={"reason": "no_kid"})
        try:
            return self._client.get_signing_key(kid)
        except PyJWKClientConnectionError as exc:
            logger.warning("JWKS fetch failed for %s: %s", self.url, exc)
            raise ServiceUnavailable("The identity provider's keys are unavailable.") from exc
        except PyJWKSetError as exc:
            logger.warning("JWKS at %s has no usable keys: %s", self.url, exc)
            raise ServiceUnavailable("The identity provider's keys are unavailable.") from exc
        except PyJWKClientError as exc:
            raise Unauthorized(
                "The identity token was signed with an unknown key.",
                details={"reason": "unknown_key"},
            ) from exc


class SharedSecretKeySource:
    """An HS256 secret shared with a custom identity provider."""

    algorithms: tuple[str, ...] = ("HS256",)

    def __init__(self, secret: SecretStr) -> None:
        self._secret = secret

    def key_for(self, header: dict[str, Any]) -> bytes:
        return self._secret.get_secret_value().encode("utf-8")


class SecretOrJwksKeySource:
    """A custom provider with both: HS256 only ever uses the secret, RS256/ES256 only the JWKS."""

    def __init__(self, secret: SharedSecretKeySource, jwks: JwksKeySource) -> None:
        self._secret = secret
        self._jwks = jwks
        self.algorithms = secret.algorithms + jwks.algorithms

    def key_for(self, header: dict[str, Any]) -> PyJWK | bytes:
        if header.get("alg") in self._secret.algorithms:
            return self._secret.key_for(header)
        return self._jwks.key_for(header)
