"""Local OpenID-style identity provider for the session function's `custom` provider.

`POST /token` with `{"sub", "email", "email_verified", "name", "picture"?}` returns
`{"id_token"}`: RS256 by default, signed with a key published at `/.well-known/jwks.json`
(with its RFC 7638 thumbprint as `kid`), or HS256 with the shared secret for `?alg=HS256`.
`GET /.well-known/openid-configuration` describes it. The issuer is the configured one or, when
unset, the base URL the server is reached at. Local-only conveniences in the token request:
`expires_in` (seconds; negative gives an already expired token) and `audience`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DEFAULT_TTL_SECONDS = 3600


class IdentityProviderSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    issuer: str | None = None  # None: the base URL the server is reached at
    audience: str = "mimivibe"
    # None disables HS256; the default is a fresh 256-bit secret the stack can share.
    hs256_secret: SecretStr | None = Field(
        default_factory=lambda: SecretStr(secrets.token_urlsafe(32)))
    token_ttl_seconds: int = Field(default=DEFAULT_TTL_SECONDS, ge=1)
    # PEM of an RSA private key to keep tokens valid across restarts; None generates one.
    rsa_private_key_pem: SecretStr | None = None


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sub: str = Field(min_length=1, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    email_verified: bool = False
    name: str | None = Field(default=None, max_length=255)
    picture: str | None = Field(default=None, max_length=2048)
    expires_in: int | None = Field(default=None, ge=-86400, le=86400)
    audience: str | None = None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Keys:
    def __init__(self, settings: IdentityProviderSettings) -> None:
        if settings.rsa_private_key_pem is not None:
            loaded = serialization.load_pem_private_key(
                settings.rsa_private_key_pem.get_secret_value().encode(), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError("rsa_private_key_pem must hold an RSA private key")
            self.private_key = loaded
        else:
            self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        # RFC 7638 thumbprint: SHA-256 of the required members, sorted, without whitespace.
        required = {name: public[name] for name in ("e", "kty", "n")}
        canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
        self.kid = _b64url(hashlib.sha256(canonical).digest())
        self.jwk = {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}


def _issuer(request: Request, settings: IdentityProviderSettings) -> str:
    return settings.issuer or str(request.base_url).rstrip("/")


def create_app(settings: IdentityProviderSettings | None = None) -> Starlette:
    config = settings or IdentityProviderSettings()
    keys = _Keys(config)
    algorithms = ["RS256", "HS256"] if config.hs256_secret is not None else ["RS256"]

    async def token(request: Request) -> Response:
        algorithm = request.query_params.get("alg", "RS256").upper()
        if algorithm not in algorithms:
            return JSONResponse({"error": "unsupported_algorithm",
                                 "error_description": f"supported: {', '.join(algorithms)}"},
                                status_code=400)
        try:
            body = TokenRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"error": "invalid_request",
                                 "error_description": exc.errors(include_url=False,
                                                                 include_input=False)},
                                status_code=400)
        now = int(time.time())
        ttl = config.token_ttl_seconds if body.expires_in is None else body.expires_in
        claims: dict[str, Any] = {
            "iss": _issuer(request, config), "aud": body.audience or config.audience,
            "sub": body.sub, "iat": now, "nbf": now, "exp": now + ttl, "auth_time": now,
            "jti": secrets.token_hex(16), "email_verified": body.email_verified,
        }
        claims.update({k: v for k, v in (("email", body.email), ("name", body.name),
                                         ("picture", body.picture)) if v is not None})
        if algorithm == "HS256":
            assert config.hs256_secret is not None
            signed = jwt.encode(claims, config.hs256_secret.get_secret_value(),
                                algorithm="HS256", headers={"typ": "JWT"})
        else:
            signed = jwt.encode(claims, keys.private_key, algorithm="RS256",
                                headers={"kid": keys.kid, "typ": "JWT"})
        return JSONResponse({"id_token": signed, "token_type": "Bearer", "expires_in": ttl})

    async def jwks(request: Request) -> Response:
        return JSONResponse({"keys": [keys.jwk]})

    async def openid_configuration(request: Request) -> Response:
        issuer = _issuer(request, config)
        base = str(request.base_url).rstrip("/")
        return JSONResponse({
            "issuer": issuer,
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "token_endpoint": f"{base}/token",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algorithms,
            "claims_supported": ["iss", "aud", "sub", "iat", "nbf", "exp", "auth_time", "email",
                                 "email_verified", "name", "picture"],
        })

    return Starlette(routes=[
        Route("/token", token, methods=["POST"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
    ])
