"""Configuration of the Stripe stand-in (built by the stack runner or a test)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

# The API version stamped on events; stripe-python 16.1 pins this one.
DEFAULT_API_VERSION = "2026-10-28.endive"


class StripeStandinSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr = Field(description="secret key clients send as `Bearer sk_test_...`")
    webhook_secret: SecretStr = Field(description="the endpoint's `whsec_...` signing secret")
    webhook_url: str | None = Field(default=None, description="where events are POSTed")
    api_version: str = DEFAULT_API_VERSION
    delivery_concurrency: int = Field(default=4, ge=1, le=64)
    # Stripe retries for days; locally the schedule is short and bounded.
    max_retries: int = Field(default=5, ge=0, le=20)
    retry_base_delay: float = Field(default=0.5, ge=0.0, le=60.0)
    retry_max_delay: float = Field(default=10.0, ge=0.0, le=600.0)
    delivery_timeout: float = Field(default=10.0, gt=0.0, le=120.0)
