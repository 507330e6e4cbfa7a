"""Response values and the header/status rules shared by the actions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from devstack.gateway.errors import ApiError, pgrst
from devstack.gateway.executor import Result

JSON_TYPE = "application/json; charset=utf-8"
OBJECT_TYPE = "application/vnd.pgrst.object+json; charset=utf-8"
PREF_ORDER = ("resolution", "missing", "return", "count", "tx", "handling", "timezone",
              "max-affected")


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def media_type(singular: bool, variant: str) -> str:
    if variant == "json":
        return OBJECT_TYPE if singular else JSON_TYPE
    if variant == "csv":
        return "text/csv; charset=utf-8"
    if variant == "stripped":
        kind = "object" if singular else "array"
        return f"application/vnd.pgrst.{kind}+json;nulls=stripped; charset=utf-8"
    return OBJECT_TYPE if singular else JSON_TYPE


def singular_error(n: int) -> ApiError:
    return pgrst(406, "PGRST116", "Cannot coerce the result to a single JSON object",
                 f"The result contains {n} rows")


def preference_applied(applied: dict[str, str]) -> str | None:
    parts = [f"{k}={applied[k]}" for k in PREF_ORDER if k in applied]
    return ", ".join(parts) if parts else None


def apply_response_gucs(result: Result, response: Response) -> None:
    """`response.status` / `response.headers` set by SQL (functions, pre-request)."""
    if result.response_headers:
        try:
            items = json.loads(result.response_headers)
            if not isinstance(items, list):
                raise TypeError
            for item in items:
                for key, value in dict(item).items():
                    response.headers[str(key)] = str(value)
        except (ValueError, TypeError) as exc:
            raise pgrst(500, "PGRST111", "response.headers guc must be a JSON array composed of "
                        "objects with a single key and a string value") from exc
    if result.response_status:
        try:
            response.status = int(result.response_status)
        except ValueError as exc:
            raise pgrst(500, "PGRST112", "response.status guc must be a valid status code") \
                from exc
