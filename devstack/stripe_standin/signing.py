"""Stripe webhook signatures: `Stripe-Signature: t=<unix ts>,v1=<hex>[,v1=<hex>...]`, where each
v1 is HMAC-SHA256 over `"<t>.<raw body>"` keyed with a whole `whsec_...` secret. During a secret
roll Stripe signs with every unexpired secret, so the header carries several v1 entries.

Tests use these helpers to forge headers for stale, tampered or re-serialized bodies."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence


def _as_bytes(payload: bytes | str) -> bytes:
    return payload.encode("utf-8") if isinstance(payload, str) else payload


def compute_signature(payload: bytes | str, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode("ascii") + b"." + _as_bytes(payload)
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(payload: bytes | str, secrets: str | Sequence[str],
                     timestamp: int | None = None) -> str:
    """The `Stripe-Signature` value for `payload` signed with each of `secrets` (newest first)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    parts = [f"t={ts}"] + [f"v1={compute_signature(payload, key, ts)}" for key in keys]
    return ",".join(parts)
