"""Settings of the local QStash stand-in and the id formats QStash uses."""

from __future__ import annotations

import secrets
import string

from pydantic import BaseModel, ConfigDict, Field, SecretStr

_ALPHABET = string.ascii_letters + string.digits


def random_id(prefix: str, length: int = 28) -> str:
    """QStash-style identifier: a type prefix and random base62 characters."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_signing_key() -> str:
    # 32 characters in all, so HS256 keys are never shorter than the hash (PyJWT warns below).
    return random_id("sig_")


class QStashStandinSettings(BaseModel):
    """What the stand-in needs; every secret has a freshly generated default.

    `retry_base_seconds` is the length, in real seconds, of one second of QStash's retry backoff
    curve (`min(86400, e ** (2.5 * n))` seconds before retry n): 1.0 is production timing, tests
    shrink it. `schedule_interval_seconds` (local only) makes every schedule fire at that interval
    instead of at its cron times, so a local consumer drains every few seconds.
    """

    model_config = ConfigDict(frozen=True)

    token: SecretStr = Field(default_factory=lambda: SecretStr(random_id("qstash_local_", 32)))
    current_signing_key: SecretStr = Field(default_factory=lambda: SecretStr(new_signing_key()))
    next_signing_key: SecretStr = Field(default_factory=lambda: SecretStr(new_signing_key()))
    schedule_interval_seconds: float | None = Field(default=None, gt=0)
    retry_base_seconds: float = Field(default=1.0, gt=0)
    default_retries: int = Field(default=3, ge=0, le=100)
    delivery_timeout_seconds: float = Field(default=30.0, gt=0)
    signature_ttl_seconds: int = Field(default=300, ge=1)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    max_kept_messages: int = Field(default=10000, ge=1)
