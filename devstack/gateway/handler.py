"""The gateway: authentication, schema selection, dispatch to table and RPC actions."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import math
import time
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from psycopg import sql

from devstack.gateway import actions, openapi, rpc, single_upsert
from devstack.gateway.auth import TokenVerifier, bearer_token
from devstack.gateway.catalog import Catalog, Function, Table
from devstack.gateway.errors import ApiError, pgrst
from devstack.gateway.executor import Executor, Transaction
from devstack.gateway.request import Prefer, Query, negotiate
from devstack.gateway.response import Response
from devstack.gateway.settings import GatewaySettings

_RELOAD_INTERVAL = 0.2
_ALLOW = "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"


def _cookies(header: str | None) -> dict[str, str]:
    jar: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, eq, value = part.strip().partition("=")
        if eq and name:
            jar[name] = value
    return jar


@lru_cache(maxsize=64)
def _search_path(schema: str, extra: tuple[str, ...]) -> str:
    return ", ".join(sql.Identifier(s).as_string(None) for s in (schema, *extra))


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.verifier = TokenVerifier(settings.jwt_secret.get_secret_value(), settings.jwt_aud)
        self.executor = Executor(settings.database_url.get_secret_value(),
                                 min_size=settings.pool_min, max_size=settings.pool_max,
                                 timeout=settings.pool_timeout)
        self.catalog = Catalog()
        self._reload_lock = asyncio.Lock()
        self._loaded_at = 0.0
        self._listener: asyncio.Task[None] | None = None
        # libpq's connect_timeout is whole seconds, at least 2.
        self._connect_timeout = max(2, math.ceil(settings.pool_timeout))

    async def start(self) -> None:
        await self.executor.open()
        await self.reload()
        self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.executor.close()

    async def reload(self) -> None:
        """Reload the schema cache (also on `NOTIFY pgrst, 'reload schema'`)."""
        async with self._reload_lock:
            # The catalog queries take parameters: psycopg, on a connection of their own.
            url = self.settings.database_url.get_secret_value()
            async with await psycopg.AsyncConnection.connect(
                    url, autocommit=True, connect_timeout=self._connect_timeout) as conn:
                await self.catalog.load(conn, self.settings.schemas)
            self._loaded_at = time.monotonic()

    async def _listen(self) -> None:
        url = self.settings.database_url.get_secret_value()
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute("LISTEN pgrst")
                    async for note in conn.notifies():
                        if note.payload in ("", "reload schema"):
                            await self.reload()
            except psycopg.Error:
                await asyncio.sleep(1.0)

    async def _reload_if_stale(self) -> bool:
        if time.monotonic() - self._loaded_at < _RELOAD_INTERVAL:
            return False
        try:
            await self.reload()
        except psycopg.OperationalError as exc:
            # PostgREST answers this while it cannot reach the database to load its cache.
            raise pgrst(503, "PGRST002", "Could not query the database for the schema cache. "
                        "Retrying.", str(exc)) from exc
        return True

    async def _table(self, schema: str, name: str) -> Table:
        table = self.catalog.tables.get((schema, name))
        if table is None and await self._reload_if_stale():
            table = self.catalog.tables.get((schema, name))
        if table is None:
            known = [n for s, n in self.catalog.tables if s == schema]
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"Perhaps you meant the table '{schema}.{close[0]}'" if close else None
            raise pgrst(404, "PGRST205", f"Could not find the table '{schema}.{name}' in the "
                        "schema cache", None, hint)
        return table

    async def _functions(self, schema: str, name: str) -> list[Function]:
        found = self.catalog.functions.get((schema, name))
        if found is None and await self._reload_if_stale():
            found = self.catalog.functions.get((schema, name))
        return found or []

    def _authenticate(self, headers: dict[str, str]) -> tuple[str, dict[str, Any]]:
        authorization = headers.get("authorization")
        apikey = headers.get("apikey")
        token = bearer_token(authorization)
        if self.settings.apikey_fallback and apikey and apikey.count(".") == 2 and (
                authorization is None or (token or "").startswith("sb_")):
            # Supabase's API gateway forwards the apikey as the bearer token in this case.
            token = apikey
        claims = self.verifier.claims(token) if token is not None else {}
        role = claims.get("role") or self.settings.anon_role
        if not role:
            raise ApiError(401, "PGRST302", "Anonymous access is disabled",
                           headers={"WWW-Authenticate": "Bearer"})
        return str(role), {**claims, "role": str(role)}

    def _schema(self, method: str, headers: dict[str, str]) -> tuple[str, bool]:
        name = "accept-profile" if method in ("GET", "HEAD") else "content-profile"
        profile = headers.get(name)
        if profile is None:
            return self.settings.schemas[0], False
        if profile not in self.settings.schemas:
            raise pgrst(406, "PGRST106", f"Invalid schema: {profile}", None,
                        "Only the following schemas are exposed: "
                        + ", ".join(self.settings.schemas))
        return profile, True

    async def _openapi(self, tx: Transaction, schema: str, host: str | None, role: str
                       ) -> Response:
        tables = [t for (s, _), t in self.catalog.tables.items() if s == schema]
        functions = [f for (s, _), fns in self.catalog.functions.items() if s == schema
                     for f in fns]
        result = await self.executor.run(tx, openapi.visible_sql(tables, functions),
                                         authenticated=role != self.settings.anon_role)
        return Response(200, {"Content-Type": openapi.MEDIA_TYPE},
                        openapi.document(self.catalog, schema, result.body, host))

    async def handle(self, method: str, path: str, raw_query: str, headers: dict[str, str],
                     body: bytes) -> Response:
        try:
            return await self._handle(method, path, raw_query, headers, body)
        except ApiError as err:
            response = Response(err.status, {"Content-Type": "application/json; charset=utf-8",
                                             "Proxy-Status": f"PostgREST; error={err.code}"},
                                err.body())
            response.headers.update(err.headers)
            return response

    async def _handle(self, method: str, path: str, raw_query: str, headers: dict[str, str],
                      body: bytes) -> Response:
        role, claims = self._authenticate(headers)
        segments = [s for s in path.split("/") if s]
        if method == "OPTIONS":
            return Response(200, {"Allow": _ALLOW})
        schema, profiled = self._schema(method, headers)
        singular, variant = negotiate(headers.get("accept"))
        prefer = Prefer.parse(headers.get("prefer"))
        params = parse_qsl(raw_query, keep_blank_values=True) if raw_query else []
        search_path = _search_path(schema, tuple(self.settings.extra_search_path))
        request_headers = {k: v for k, v in headers.items() if k != "cookie"} \
            if "cookie" in headers else headers
        role_settings = self.catalog.role_settings.get(role, {})
        timezone = prefer.values.get("timezone") if prefer.values else None
        if timezone is not None:
            if timezone in self.catalog.timezones:  # PostgREST ignores an unknown zone
                role_settings = {**role_settings, "timezone": timezone}
            elif prefer.get("handling") == "strict":
                raise pgrst(400, "PGRST122", "Invalid preferences given with handling=strict",
                            f"Invalid preferences: timezone={timezone}")
            else:
                del prefer.values["timezone"]
        tx = Transaction(role, role_settings, search_path, claims,
                         method, path, request_headers, _cookies(headers.get("cookie")),
                         read_only=method in ("GET", "HEAD"), pre_request=self.settings.pre_request)
        if not segments and method in ("GET", "HEAD"):
            return await self._openapi(tx, schema, headers.get("host"), role)
        is_rpc = len(segments) == 2 and segments[0] == "rpc"
        if not is_rpc and len(segments) != 1:
            raise pgrst(404, "PGRST125", f"Invalid path specified in request URL: {path}")
        ctx = actions.Context(
            gateway=self, tx=tx, method=method, schema=schema,
            query=Query.parse(params, defer_filters=is_rpc), prefer=prefer, singular=singular,
            authenticated=role != self.settings.anon_role, range_header=headers.get("range"),
            body=body, base_headers={"Content-Profile": schema} if profiled else {},
            content_type=headers.get("content-type"), variant=variant)
        if is_rpc:
            return await rpc.call(ctx, segments[1], await self._functions(schema, segments[1]))
        table = await self._table(schema, segments[0])
        if method in ("GET", "HEAD"):
            return await actions.read(ctx, table)
        if method == "POST":
            return await actions.insert(ctx, table)
        if method == "PATCH":
            return await actions.update(ctx, table)
        if method == "DELETE":
            return await actions.delete(ctx, table)
        if method == "PUT":
            return await single_upsert.put(ctx, table)
        raise pgrst(405, "PGRST117", f"Unsupported HTTP method: {method}")
