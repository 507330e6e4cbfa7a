"""The `Upstash-Signature` JWT QStash attaches to every delivery.

HS256 with the current signing key; claims iss "Upstash", sub = destination URL, iat/nbf now,
exp after the signature lifetime (5 minutes at QStash), a unique jti, and body = URL-safe base64
of the SHA-256 of the raw body, padded (receivers strip the padding before comparing).
"""

from __future__ import annotations

import base64
import hashlib
import time

import jwt

from devstack.qstash_standin.settings import random_id


def body_hash(body: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).decode()


def sign_delivery(key: str, *, url: str, body: bytes, ttl_seconds: int = 300,
                  now: int | None = None) -> str:
    issued = int(time.time()) if now is None else now
    claims = {
        "iss": "Upstash",
        "sub": url,
        "exp": issued + ttl_seconds,
        "nbf": issued,
        "iat": issued,
        "jti": random_id("jwt_"),
        "body": body_hash(body),
    }
    return jwt.encode(claims, key, algorithm="HS256", headers={"typ": "JWT"})
