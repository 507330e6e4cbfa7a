"""PostgREST clients (Supabase REST): one service-role client and per-user clients.

The HTTP connection pool is built once per settings object (`shared/bootstrap.py`) and shared: the service client and every
per-user client (which carries the caller's access token, so RLS applies) send through it.
Every call is sent once: an unavailable database is a prompt 503, retried by the caller.
`execute(query)` runs a postgrest-py query and maps failures to `shared.errors`: project
SQLSTATEs (MV...) through `from_sqlstate`, PostgREST/connection trouble to 503.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr

from shared.errors import (
    AppError,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    from_sqlstate,
)
from shared.settings import Settings

if TYPE_CHECKING:
    from postgrest import SyncPostgrestClient

logger = logging.getLogger("mimivibe.db")

# PostgREST's own codes that mean "the database or PostgREST is not reachable / overloaded".
_UNAVAILABLE_CODES = {"PGRST000", "PGRST001", "PGRST002", "PGRST003", "57014", "40001", "40P01"}
# SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57P operator intervention.
_UNAVAILABLE_PREFIXES = ("08", "53", "57P")
_UNAUTHORIZED_CODES = {"PGRST301", "PGRST302", "PGRST303"}


class Database:
    def __init__(
        self,
        supabase_url: str,
        *,
        anon_key: SecretStr,
        service_role_key: SecretStr,
        http_client: httpx.Client | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.rest_url = supabase_url.rstrip("/") + "/rest/v1"
        self._anon_key = anon_key
        self._service_role_key = service_role_key
        # Never give the shared pool default auth headers: each client sends its own.
        self.http = http_client or httpx.Client(
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 5.0)),
            http2=True,
            follow_redirects=False,
        )
        self._service: SyncPostgrestClient | None = None

    def _client(self, api_key: SecretStr, bearer: str) -> SyncPostgrestClient:
        from postgrest import SyncPostgrestClient
        from postgrest.constants import DEFAULT_POSTGREST_CLIENT_HEADERS

        headers = {
            **DEFAULT_POSTGREST_CLIENT_HEADERS,
            "apikey": api_key.get_secret_value(),
            "Authorization": f"Bearer {bearer}",
        }
        # No retries inside the client: postgrest-py would resend a GET or HEAD that met a 503,
        # a 520 or a network error after sleeping 1, 2 and 4 s, so a request whose first
        # database call is a table read (the erased-account check) would answer 503 seven
        # seconds late. Ours answer 503 with Retry-After at once and the caller retries.
        return SyncPostgrestClient(self.rest_url, headers=headers, http_client=self.http,
                                   retry_enabled=False)

    @property
    def service(self) -> SyncPostgrestClient:
        """Service-role client (bypasses RLS): for SQL functions granted to service_role only."""
        if self._service is None:
            key = self._service_role_key
            self._service = self._client(key, key.get_secret_value())
        return self._service

    def for_user(self, access_token: str) -> SyncPostgrestClient:
        """A client acting as the user of `access_token`: RLS and `auth.uid()` apply."""
        return self._client(self._anon_key, access_token)

    def close(self) -> None:
        self.http.close()


def translate_error(exc: Exception) -> AppError:
    """The `AppError` for a failed PostgREST call (APIError or transport failure)."""
    from postgrest.exceptions import APIError

    if isinstance(exc, httpx.TransportError):
        return ServiceUnavailable("The database is unavailable; try again.")
    if not isinstance(exc, APIError):
        return AppError()
    code = exc.code or ""
    mapped = from_sqlstate(code)
    if mapped is not None:
        # Our SQL functions put a readable sentence in DETAIL; the MESSAGE is the stable code.
        if isinstance(exc.details, str) and exc.details.strip():
            mapped.message = exc.details.strip()
        return mapped
    if code in _UNAUTHORIZED_CODES:
        return Unauthorized()
    if code == "PGRST116":
        return NotFound()
    if code in _UNAVAILABLE_CODES or code.startswith(_UNAVAILABLE_PREFIXES):
        return ServiceUnavailable("The database is unavailable; try again.")
    # Bodies that were not PostgREST JSON carry the HTTP status as the code.
    if len(code) == 3 and code.isdigit() and int(code) >= 500:
        return ServiceUnavailable("The database is unavailable; try again.")
    logger.error("unexpected PostgREST error %s", code or "without code")
    return AppError()


def execute(query: Any) -> Any:
    """Run a postgrest-py query builder (`.execute()`), mapping failures to `AppError`s."""
    from postgrest.exceptions import APIError

    try:
        return query.execute()
    except (APIError, httpx.TransportError) as exc:
        raise translate_error(exc) from exc


def build_database(settings: Settings) -> Database:
    return Database(
        settings.supabase_url,
        anon_key=settings.supabase_anon_key,
        service_role_key=settings.supabase_service_role_key,
    )
