"""Configuration of the PostgREST-compatible gateway (the subset of PostgREST's options we use)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator


class GatewaySettings(BaseModel):
    """Mirrors PostgREST's `db-uri`, `jwt-secret`, `db-anon-role`, `db-schemas`, ... (Supabase values)."""

    database_url: SecretStr = Field(description="login URL of the `authenticator` role")
    jwt_secret: SecretStr
    jwt_aud: str | None = None
    anon_role: str | None = "anon"
    schemas: list[str] = Field(default_factory=lambda: ["public"], min_length=1)
    extra_search_path: list[str] = Field(default_factory=lambda: ["public", "extensions"])
    max_rows: int | None = 1000
    safeupdate: bool = True
    pool_min: int = 1
    pool_max: int = 10
    pool_timeout: float = 10.0
    apikey_fallback: bool = True
    pre_request: str | None = None
    # Bounds on what a request may send: larger bodies answer 413, longer targets 414.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    max_url_bytes: int = Field(default=16 * 1024, ge=64)

    @field_validator("jwt_secret")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr) -> SecretStr:
        # PostgREST v13 refuses to start with a shorter secret.
        if len(value.get_secret_value()) < 32:
            raise ValueError("jwt_secret must be at least 32 characters")
        return value
