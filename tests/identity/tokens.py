"""Test-side identity providers: RSA/EC keys generated per test, a JWKS server, token forging."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class SigningKey:
    kid: str
    private_key: Any
    algorithm: str = "RS256"

    @classmethod
    def rsa(cls, kid: str | None = None) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(kid or uuid.uuid4().hex[:16], key, "RS256")

    @classmethod
    def ec(cls, kid: str | None = None) -> SigningKey:
        return cls(kid or uuid.uuid4().hex[:16], ec.generate_private_key(ec.SECP256R1()), "ES256")

    def jwk(self) -> dict[str, Any]:
        algo = RSAAlgorithm if self.algorithm == "RS256" else ECAlgorithm
        data = json.loads(algo.to_jwk(self.private_key.public_key()))
        data.update({"kid": self.kid, "use": "sig", "alg": self.algorithm})
        return data

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        return jwt.encode(
            claims, self.private_key, algorithm=self.algorithm, headers={"kid": kid or self.kid}
        )


def claims_for(issuer: str, audience: str | None, subject: str | None = None,
               **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject or f"user_{uuid.uuid4().hex[:12]}",
        "iat": now,
        "exp": now + 600,
    }
    if audience is not None:
        claims["aud"] = audience
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


def forge(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None = None) -> str:
    """A compact JWT with any header; HMAC-SHA256 signed with `hmac_key`, else unsigned."""
    signing_input = (
        b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    )
    if hmac_key is None:
        return signing_input + "."
    digest = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(digest)


def tamper(token: str, **changes: Any) -> str:
    """Replace claims in the payload, keeping the original header and signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return ".".join([header, b64url(json.dumps(claims).encode()), signature])


@dataclass
class JwksEndpoints:
    """Key sets served at /<name>/jwks.json; the keys can be swapped while serving."""

    sets: dict[str, list[SigningKey]] = field(default_factory=dict)
    fetches: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, name: str, *keys: SigningKey) -> None:
        with self._lock:
            self.sets[name] = list(keys)

    def fetch_count(self, name: str) -> int:
        with self._lock:
            return self.fetches.get(name, 0)

    def app(self) -> Starlette:
        async def jwks(request: Request) -> JSONResponse:
            name = request.path_params["name"]
            with self._lock:
                self.fetches[name] = self.fetches.get(name, 0) + 1
                keys = [k.jwk() for k in self.sets.get(name, [])]
            return JSONResponse({"keys": keys}, headers={"cache-control": "max-age=3600"})

        return Starlette(routes=[Route("/{name}/jwks.json", jwks)])
