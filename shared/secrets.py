"""Secrets from AWS Secrets Manager, loaded at cold start and refreshed after a bounded age.

In AWS the environment only names the secret (`MIMIVIBE_SECRET_ID`: a JSON object whose keys are
setting names such as `STRIPE_SECRET_KEY`); the values never sit in the Lambda configuration.
Locally and in tests there is no secret id and settings come from the environment alone, so
boto3 is never imported on that path.
"""

from __future__ import annotations

import os
from typing import Any

from shared.errors import ConfigError

SECRET_ID_ENV = "MIMIVIBE_SECRET_ID"
REFRESH_ENV = "MIMIVIBE_SECRET_REFRESH_SECONDS"
DEFAULT_REFRESH_SECONDS = 300


class AwsSecret:
    """One JSON secret, cached by Powertools for `max_age` seconds, then fetched again."""

    def __init__(self, secret_id: str, max_age: int = DEFAULT_REFRESH_SECONDS,
                 boto3_client: Any = None) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        self.secret_id = secret_id
        self.max_age = max_age
        self._provider = SecretsProvider(boto3_client=boto3_client)

    def load(self) -> dict[str, str]:
        from aws_lambda_powertools.utilities.parameters.exceptions import (
            GetParameterError,
            TransformParameterError,
        )

        try:
            value = self._provider.get(self.secret_id, transform="json", max_age=self.max_age)
        except (GetParameterError, TransformParameterError) as exc:
            raise ConfigError(f"Secret {self.secret_id!r} could not be loaded.") from exc
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError(f"Secret {self.secret_id!r} must be a JSON object of strings.")
        return value


_source: AwsSecret | None = None


def secret_source() -> AwsSecret | None:
    """The configured secret, created once per container; None when running without AWS."""
    global _source
    secret_id = os.environ.get(SECRET_ID_ENV)
    if not secret_id:
        return _source
    if _source is None or _source.secret_id != secret_id:
        max_age = int(os.environ.get(REFRESH_ENV, DEFAULT_REFRESH_SECONDS))
        _source = AwsSecret(secret_id, max_age=max_age)
    return _source


def use_secret_source(source: AwsSecret | None) -> None:
    """Inject a source (tests pass one built on a moto client)."""
    global _source
    _source = source


def load_at_cold_start() -> None:
    """In AWS (a secret is named), load it and validate the settings while the container
    initialises, so a missing or unreadable secret fails the cold start with a ConfigError naming
    it instead of a 500 on the first request. Without a secret id this does nothing (and imports
    neither boto3 nor Powertools)."""
    if os.environ.get(SECRET_ID_ENV):
        from shared.settings import get_settings

        get_settings()
