"""One transaction per request, sent as one simple-query message (one round trip).

BEGIN <isolation> <access mode>; SELECT set_config(...) ...; [pre-request;] <main>; [COMMIT]
The COMMIT is left out when the response depends on the result (singular, max-affected): the
caller then commits or rolls back. Session-level SET is never used; the role and every GUC are
transaction-local, so a pooled connection carries nothing over.

When the transaction would be the server's default anyway (READ COMMITTED, and read-write unless
the request is read-only), BEGIN and COMMIT are left out: the statements of one query message
already run as one implicit transaction, committed after the last or rolled back on an error
(which also saves the ROLLBACK round trip). Read-only then comes from `transaction_read_only`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from psycopg import sql

from devstack.gateway.errors import ApiError, from_pg, pgrst
from devstack.gateway.pgwire import PgConnection, PgError, Row
from devstack.gateway.pool import Pool, PoolClosed, PoolTimeout

_ISOLATION = {"read committed": "READ COMMITTED", "repeatable read": "REPEATABLE READ",
              "serializable": "SERIALIZABLE", "read uncommitted": "READ UNCOMMITTED"}


@dataclass
class Result:
    total: int | None
    page_total: int
    body: str | None
    extra: str | None
    response_headers: str | None
    response_status: str | None
    inserted: int | None


@dataclass
class Transaction:
    role: str
    role_settings: dict[str, str]
    search_path: str
    claims: dict[str, Any]
    method: str
    path: str
    headers: dict[str, str]
    cookies: dict[str, str]
    read_only: bool
    pre_request: str | None = None


def literal(value: str) -> str:
    """A string literal, untyped, so PostgreSQL coerces it. Plain text is quoted here (what
    psycopg renders for it, without its per-call adaptation cost: this runs for every GUC of
    every request); backslashes and NULs are left to psycopg (E'' form, or its error)."""
    if "\\" in value or "\x00" in value:
        return sql.Literal(value).as_string(None)
    return "'" + value.replace("'", "''") + "'"


_dumps = json.JSONEncoder(separators=(",", ":")).encode


@lru_cache(maxsize=256)
def _fixed_settings(search_path: str, role: str, role_settings: tuple[tuple[str, str], ...]
                    ) -> str:
    """The per-(schema, role) part of the prelude: search_path, role settings, role."""
    pairs = [("search_path", search_path), *role_settings, ("role", role)]
    return ", ".join(f"pg_catalog.set_config({literal(k)}, {literal(v)}, true)" for k, v in pairs)


_DEFAULTS_QUERY = ("SELECT pg_catalog.current_setting('default_transaction_isolation'), "
                   "pg_catalog.current_setting('default_transaction_read_only')")


async def learn_defaults(conn: PgConnection) -> None:
    """Record the transaction defaults of a new connection (its login role's and database's)."""
    row = (await conn.query(_DEFAULTS_QUERY))[0][0]
    conn.defaults = {"isolation": (row[0] or b"").decode(), "read_only": (row[1] or b"").decode()}


def _implicit(isolation: str, conn: PgConnection) -> bool:
    return (isolation == "READ COMMITTED" and conn.defaults.get("isolation") == "read committed"
            and conn.defaults.get("read_only") == "off")


def _prelude(tx: Transaction, conn: PgConnection, *, deferred_commit: bool) -> tuple[str, bool]:
    """(the statements before the main one, whether they open an explicit transaction)."""
    isolation = _ISOLATION.get(tx.role_settings.get("default_transaction_isolation", ""),
                               "READ COMMITTED")
    role_settings = tuple((k, v) for k, v in tx.role_settings.items()
                          if k != "default_transaction_isolation")
    explicit = deferred_commit or not _implicit(isolation, conn)
    calls = (
        ("pg_catalog.set_config('transaction_read_only', 'on', true), "
         if tx.read_only and not explicit else "")
        + _fixed_settings(tx.search_path, tx.role, role_settings)
        + ", pg_catalog.set_config('request.jwt.claims', " + literal(_dumps(tx.claims))
        + ", true), pg_catalog.set_config('request.method', " + literal(tx.method)
        + ", true), pg_catalog.set_config('request.path', " + literal(tx.path)
        + ", true), pg_catalog.set_config('request.headers', " + literal(_dumps(tx.headers))
        + ", true), pg_catalog.set_config('request.cookies', " + literal(_dumps(tx.cookies))
        + ", true)")
    if explicit:
        mode = "READ ONLY" if tx.read_only else "READ WRITE"
        text = f"BEGIN ISOLATION LEVEL {isolation} {mode}; SELECT {calls};"
    else:
        text = f"SELECT {calls};"
    if tx.pre_request:
        schema, _, name = tx.pre_request.rpartition(".")
        fn = sql.Identifier(schema, name) if schema else sql.Identifier(name)
        text += " SELECT " + fn.as_string(None) + "();"
    return text, explicit


class Executor:
    def __init__(self, conninfo: str, *, min_size: int, max_size: int, timeout: float) -> None:
        self.pool = Pool(conninfo, min_size=min_size, max_size=max_size, timeout=timeout,
                         setup=learn_defaults)

    async def open(self) -> None:
        await self.pool.open()

    async def close(self) -> None:
        await self.pool.close()

    async def _getconn(self) -> PgConnection:
        try:
            return await self.pool.acquire()
        except PoolTimeout as exc:
            raise pgrst(504, "PGRST003", "Timed out acquiring connection from connection pool."
                        ) from exc
        except (PgError, PoolClosed, OSError, TimeoutError) as exc:
            raise pgrst(503, "PGRST001", "Database client error. Retrying the connection.",
                        str(exc)) from exc

    async def run(self, tx: Transaction, main: sql.Composable | str, *, authenticated: bool,
                  check: Callable[[Result], ApiError | None] | None = None) -> Result:
        """Run the request's transaction. With `check`, commit only if it returns no error."""
        main_text = main if isinstance(main, str) else main.as_string(None)
        conn = await self._getconn()
        try:
            prelude, explicit = _prelude(tx, conn, deferred_commit=check is not None)
            results = await conn.query(
                prelude + " " + main_text + ("; COMMIT;" if explicit and not check else ";"))
            rows = results[explicit + 1 + bool(tx.pre_request)]
            if not rows:
                raise pgrst(500, "PGRST000", "The main statement returned no row")
            result = _result(rows[0])
            if check is not None:
                err = check(result)
                await conn.query("ROLLBACK" if err else "COMMIT")
                if err is not None:
                    raise err
        except PgError as exc:
            await _abort(conn)
            raise from_pg(exc, authenticated=authenticated) from exc
        except BaseException:
            await _abort(conn)
            raise
        finally:
            self.pool.release(conn)
        return result


def _int(value: bytes | None) -> int | None:
    return None if value is None else int(value)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _result(row: Row) -> Result:
    total, page_total, body, extra, headers, status, inserted = row
    return Result(_int(total), int(page_total or 0), _text(body), _text(extra), _text(headers),
                  _text(status), _int(inserted))


async def _abort(conn: PgConnection) -> None:
    """Leave the connection idle for the pool; a broken one is dropped by the pool."""
    if conn.broken or conn.tx_status == b"I":
        return
    try:
        await conn.query("ROLLBACK")
    except PgError:
        conn.close()
