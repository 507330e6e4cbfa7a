"""The base of every request body the functions accept (kept apart from HTTP: use cases import
it, and they import nothing of shared.http)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class RequestModel(BaseModel):
    """Base of every request body: unknown fields are refused (docs/API.md: 422)."""

    # defer_build: a model's validator is built when it first validates, not at import, so a
    # cold start builds only the models of the request it serves (the response models of the
    # handlers' use cases say the same).
    model_config = ConfigDict(defer_build=True, extra="forbid", str_strip_whitespace=False)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        # PostgreSQL text cannot hold U+0000: refuse it here (422) rather than fail in SQL (5xx).
        if _has_nul(data):
            raise ValueError("text must not contain NUL (U+0000) characters")
        return data


class NoBody(BaseModel):
    """The body of an endpoint that reads none."""

    model_config = ConfigDict(defer_build=True)
