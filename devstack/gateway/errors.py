"""PostgREST's error body and status table (SQLSTATE -> HTTP), as one exception type."""

from __future__ import annotations

import json
from typing import Any

from devstack.gateway.pgwire import PgError


class ApiError(Exception):
    """An error answered as `{"code","details","hint","message"}` with a status and headers."""

    def __init__(self, status: int, code: str, message: str, details: Any = None,
                 hint: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = headers or {}

    def body(self) -> bytes:
        return json.dumps({"code": self.code, "details": self.details, "hint": self.hint,
                           "message": self.message}).encode()


def pgrst(status: int, code: str, message: str, details: str | None = None,
          hint: str | None = None) -> ApiError:
    return ApiError(status, code, message, details, hint)


def parse_error(message: str, details: str | None = None) -> ApiError:
    return ApiError(400, "PGRST100", message, details)


def _prefix_status(state: str, message: str, authenticated: bool) -> int:
    exact = {
        "23503": 409, "23505": 409, "25006": 405, "42501": 403 if authenticated else 401,
        "42883": 404, "42P01": 404, "42P17": 500, "53400": 500, "57P01": 503, "P0001": 400,
    }
    if state in exact:
        return exact[state]
    if state == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if state == "22023":
        return 401 if message.startswith("role ") and message.endswith("does not exist") else 400
    by_class = {"08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "2D": 500, "38": 500,
                "39": 500, "3B": 500, "40": 500, "28": 403, "53": 503, "54": 500, "55": 500,
                "57": 500, "58": 500, "F0": 500, "HV": 500, "XX": 500, "P0": 500}
    return by_class.get(state[:2], 400)


def _raised_pgrst(message: str, detail: str | None) -> ApiError:
    """`raise sqlstate 'PGRST' using message = '<json body>', detail = '<json status/headers>'`."""
    try:
        body = json.loads(message)
        meta = json.loads(detail or "")
        status = int(meta["status"])
        headers = {str(k): str(v) for k, v in (meta.get("headers") or {}).items()}
        err = ApiError(status, str(body["code"]), str(body["message"]),
                       body.get("details"), body.get("hint"), headers=headers)
    except (ValueError, KeyError, TypeError, AttributeError):
        return pgrst(500, "PGRST121", "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
                     "Invalid JSON value for MESSAGE: '" + message + "'",
                     "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and "
                     "optional keys: 'details', 'hint'.")
    return err


def from_pg(exc: PgError, *, authenticated: bool) -> ApiError:
    """Map a PostgreSQL error the way PostgREST's `pgErrorStatus` does."""
    state = exc.sqlstate
    message = exc.message
    if not state:
        return pgrst(503, "PGRST001", "Database client error. Retrying the connection.", message)
    if state == "PGRST":
        return _raised_pgrst(message, exc.detail)
    if state.startswith("PT") and state[2:].isdigit():
        status = int(state[2:])
    else:
        status = _prefix_status(state, message, authenticated)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return ApiError(status, state, message, exc.detail, exc.hint, headers=headers)
