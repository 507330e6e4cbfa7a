"""Typed configuration, validated once per container (at cold start).

Values come from the environment (in AWS the secrets are resolved into it at cold start; see
`shared/secrets.py`): keyword arguments first, then the environment variable named like the
field (in any case), then the default. A plain pydantic model filled by a small loader rather
than pydantic-settings, whose import (asyncio, every settings source, plugin discovery) cost each
handler's cold start several times what the loading itself needs. Secrets are `SecretStr`: they
never appear in reprs or logs. Feature groups are optional so that each function demands only
what it uses, through `require_*`.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from shared.errors import ConfigError


class Settings(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        """Fields not passed are read from the environment, names matched case-insensitively."""
        if not isinstance(data, dict):
            return data
        env = {name: value for key, value in os.environ.items()
               if (name := key.lower()) in cls.model_fields and name not in data}
        return {**env, **data}

    # Supabase (PostgREST) and the access tokens the functions mint and accept.
    supabase_url: str
    supabase_anon_key: SecretStr
    supabase_service_role_key: SecretStr
    supabase_jwt_secret: SecretStr
    access_token_ttl_seconds: int = Field(default=3600, ge=60, le=86400)

    # Upstash Redis (REST).
    upstash_redis_rest_url: str | None = None
    upstash_redis_rest_token: SecretStr | None = None

    # Rate limiting (per user, sliding window) shared by the user functions.
    rate_limit_requests: int = Field(default=20, ge=1)
    rate_limit_window_seconds: int = Field(default=10, ge=1)

    # Identity providers: a provider is enabled when its issuer is set.
    clerk_issuer: str | None = None
    clerk_jwks_url: str | None = None
    clerk_audience: str | None = None
    auth0_issuer: str | None = None
    auth0_jwks_url: str | None = None
    auth0_audience: str | None = None
    firebase_project_id: str | None = None
    firebase_jwks_url: str = (
        "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com"
    )
    custom_issuer: str | None = None
    custom_audience: str | None = None
    custom_hs256_secret: SecretStr | None = None
    custom_jwks_url: str | None = None
    token_leeway_seconds: int = Field(default=30, ge=0, le=300)

    # Stripe.
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None

    # QStash and the job queue.
    qstash_url: str = "https://qstash.upstash.io"
    qstash_token: SecretStr | None = None
    qstash_current_signing_key: SecretStr | None = None
    qstash_next_signing_key: SecretStr | None = None
    job_consumer_url: str | None = None
    max_pending_readings: int = Field(default=3, ge=1)
    # The lease a claimed reading job holds in Postgres (ConsumerConfig.lease_seconds). The name
    # is older than that meaning and kept, so deployed environments keep their value.
    visibility_timeout_seconds: int = Field(default=240, ge=5)

    # The reading pipeline.
    llm_provider: str = "offline"
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    # Per LLM call; a reading makes up to 6, and they must fit the job-consumer's 300 s timeout
    # (shared/consumer_config.py checks it).
    llm_timeout_seconds: float = Field(default=30.0, gt=0)

    def require(self, *names: str) -> None:
        """Fail loudly (at cold start) when a function's settings are missing."""
        missing = [n for n in names if getattr(self, n) in (None, "")]
        if missing:
            raise ConfigError(
                "Missing settings: " + ", ".join(sorted(n.upper() for n in missing))
            )


_cached: tuple[tuple[tuple[str, str], ...], Settings] | None = None


def get_settings() -> Settings:
    """Settings for this container: environment, overlaid with the AWS secret when one is named.

    Built once; rebuilt only when the secret's refreshed value differs (a rotation).
    """
    global _cached
    from shared.secrets import secret_source

    source = secret_source()
    secrets = source.load() if source is not None else {}
    key = tuple(sorted(secrets.items()))
    if _cached is not None and _cached[0] == key:
        return _cached[1]
    try:
        overlay: dict[str, Any] = {k.lower(): v for k, v in secrets.items()}
        settings = Settings(**overlay)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]).upper() for e in exc.errors()})
        raise ConfigError("Invalid or missing settings: " + ", ".join(fields)) from None
    _cached = (key, settings)
    return settings


def reset_settings() -> None:
    """Forget the cached settings (tests that change the environment)."""
    global _cached
    _cached = None
