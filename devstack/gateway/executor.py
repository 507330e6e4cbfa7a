"""One transaction per request, its statements pipelined in one round trip (one Sync).

BEGIN <isolation> <access mode>; SELECT set_config(..., $n, true), ...; [pre-request;] <main>;
[COMMIT]. The COMMIT is left out when the response depends on the result (singular,
max-affected): the caller then commits or rolls back. Session-level SET is never used; the role
and every GUC are transaction-local, so a pooled connection carries nothing over.

The settings statement takes its values as parameters, so, like BEGIN, COMMIT and the
parameterised main statements, it is prepared once per connection and afterwards only bound
(PostgREST prepares its statements too): parse and plan were most of the server's cost.

When the transaction would be the server's default anyway (READ COMMITTED, and read-write unless
the request is read-only), BEGIN and COMMIT are left out: messages up to a Sync already run as
one implicit transaction, committed at the Sync or rolled back on an error (which also saves the
ROLLBACK round trip). Read-only then comes from `transaction_read_only`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from psycopg import sql

from devstack.gateway.errors import ApiError, from_pg, pgrst
from devstack.gateway.pgwire import PgConnection, PgError, Row, Statement
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
    planned: int | None = None  # the planner's row estimate, when asked for


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


_slow_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _dumps(value: object) -> str:
    """Compact JSON of the request GUCs (orjson: this runs three times per request; json for
    what orjson refuses, such as integers beyond 64 bits in a token's claims)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return _slow_dumps(value)


@dataclass(frozen=True)
class Prepared:
    """A main statement whose values are parameters ($1, ...): prepared once per connection."""

    text: str
    params: tuple[str | None, ...]


_DEFAULTS_QUERY = ("SELECT pg_catalog.current_setting('default_transaction_isolation'), "
                   "pg_catalog.current_setting('default_transaction_read_only')")


async def learn_defaults(conn: PgConnection) -> None:
    """Record the transaction defaults of a new connection (its login role's and database's)."""
    row = (await conn.query(_DEFAULTS_QUERY))[0][0]
    conn.defaults = {"isolation": (row[0] or b"").decode(), "read_only": (row[1] or b"").decode()}


def _implicit(isolation: str, conn: PgConnection) -> bool:
    return (isolation == "READ COMMITTED" and conn.defaults.get("isolation") == "read committed"
            and conn.defaults.get("read_only") == "off")


_REQUEST_GUCS = ("request.jwt.claims", "request.method", "request.path", "request.headers",
                 "request.cookies")


@lru_cache(maxsize=256)
def _settings_sql(role_keys: tuple[str, ...], read_only: bool) -> str:
    """`SELECT set_config(<name>, $n, true), ...`: search_path, the role's settings, the role,
    then the request GUCs; with `read_only`, the transaction is made read-only first."""
    names = ("search_path", *role_keys, "role", *_REQUEST_GUCS)
    calls = [f"pg_catalog.set_config({sql.Literal(name).as_string(None)}, ${i}, true)"
             for i, name in enumerate(names, start=1)]
    if read_only:
        calls.insert(0, "pg_catalog.set_config('transaction_read_only', 'on', true)")
    return "SELECT " + ", ".join(calls)


@lru_cache(maxsize=64)
def _call_sql(function: str) -> str:
    schema, _, name = function.rpartition(".")
    fn = sql.Identifier(schema, name) if schema else sql.Identifier(name)
    return "SELECT " + fn.as_string(None) + "()"


def _prelude(tx: Transaction, conn: PgConnection, *, deferred_commit: bool
             ) -> tuple[list[Statement], bool]:
    """(the statements before the main one, whether they open an explicit transaction)."""
    isolation = _ISOLATION.get(tx.role_settings.get("default_transaction_isolation", ""),
                               "READ COMMITTED")
    role_settings = [(k, v) for k, v in tx.role_settings.items()
                     if k != "default_transaction_isolation"]
    explicit = deferred_commit or not _implicit(isolation, conn)
    text = _settings_sql(tuple(k for k, _ in role_settings), tx.read_only and not explicit)
    params = [tx.search_path, *(v for _, v in role_settings), tx.role, _dumps(tx.claims),
              tx.method, tx.path, _dumps(tx.headers), _dumps(tx.cookies) if tx.cookies else "{}"]
    statements: list[Statement] = [(text, params, True)]
    if explicit:
        mode = "READ ONLY" if tx.read_only else "READ WRITE"
        statements.insert(0, (f"BEGIN ISOLATION LEVEL {isolation} {mode}", (), True))
    if tx.pre_request:
        statements.append((_call_sql(tx.pre_request), (), True))
    return statements, explicit


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

    async def run(self, tx: Transaction, main: sql.Composable | str | Prepared, *,
                  authenticated: bool,
                  check: Callable[[Result], ApiError | None] | None = None,
                  explain: sql.Composable | None = None) -> Result:
        """Run the request's transaction. With `check`, commit only if it returns no error.
        With `explain`, that query's row estimate (EXPLAIN, in the same transaction, as the
        same role) comes back as `planned`."""
        if isinstance(main, Prepared):
            statement: Statement = (main.text, main.params, True)
        else:  # values inlined as literals: not worth keeping on the connection
            statement = (main if isinstance(main, str) else main.as_string(None), (), False)
        conn = await self._getconn()
        try:
            statements, explicit = _prelude(tx, conn, deferred_commit=check is not None)
            if explain is not None:
                statements.append(((sql.SQL("EXPLAIN (FORMAT JSON) ") + explain).as_string(None),
                                   (), False))
            main_index = len(statements)
            statements.append(statement)
            if explicit and check is None:
                statements.append(("COMMIT", (), True))
            pipelined = await conn.pipeline(statements)
            rows = pipelined[main_index]
            if not rows:
                raise pgrst(500, "PGRST000", "The main statement returned no row")
            result = _result(rows[0])
            if explain is not None:
                result.planned = _plan_rows(pipelined[main_index - 1][0][0])
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


def _plan_rows(plan: bytes | None) -> int:
    return int(json.loads(plan or b"[{}]")[0]["Plan"]["Plan Rows"])


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
