"""The protocol client's pipelines: one round trip, one implicit transaction, and statements
marked for caching prepared once per connection (and only once the server confirmed them)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from devstack.gateway import pgwire
from devstack.gateway.pgconnect import connect
from devstack.gateway.pgwire import PgConnection, PgError

T = TypeVar("T")
COUNT_PREPARED = ("SELECT count(*) FROM pg_catalog.pg_prepared_statements", (), False)


def _with_connection(pg_server: str, scenario: Callable[[PgConnection], Awaitable[T]]) -> T:
    async def run() -> T:
        conn = await connect(pg_server, timeout=5)
        try:
            return await scenario(conn)
        finally:
            conn.close()
    return asyncio.run(run())


def test_a_cached_statement_is_prepared_once_and_then_only_bound(pg_server: str) -> None:
    async def scenario(conn: PgConnection) -> list[tuple[bytes | None, bytes | None]]:
        seen = []
        for n in range(4):
            added, prepared = await conn.pipeline(
                [("SELECT $1::int + 1", (str(n),), True), COUNT_PREPARED])
            seen.append((added[0][0], prepared[0][0]))
        return seen

    assert _with_connection(pg_server, scenario) == [
        (b"1", b"1"), (b"2", b"1"), (b"3", b"1"), (b"4", b"1")]


def test_uncached_statements_leave_nothing_prepared(pg_server: str) -> None:
    async def scenario(conn: PgConnection) -> list[list[list[bytes | None]]]:
        return await conn.pipeline([("SELECT $1::text", ("ดวง",), False), COUNT_PREPARED])

    assert _with_connection(pg_server, scenario) == [[["ดวง".encode()]], [[b"0"]]]


def test_the_least_recently_used_statement_is_closed_beyond_the_limit(
        pg_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgwire, "_PREPARED_MAX", 2)

    async def scenario(conn: PgConnection) -> tuple[list[bytes | None], bytes | None]:
        answers = []
        for text in ("SELECT 'a'", "SELECT 'b'", "SELECT 'a'", "SELECT 'c'", "SELECT 'b'"):
            answers.append((await conn.pipeline([(text, (), True)]))[0][0][0])
        names = await conn.pipeline([("SELECT string_agg(statement, ',' ORDER BY statement)"
                                      " FROM pg_catalog.pg_prepared_statements", (), False)])
        return answers, names[0][0][0]

    answers, statements = _with_connection(pg_server, scenario)
    assert answers == [b"a", b"b", b"a", b"c", b"b"]
    # 'b' was evicted when 'c' came ('a' had been used since) and prepared again afterwards.
    assert statements == b"SELECT 'b',SELECT 'c'"


def test_statements_skipped_after_an_error_are_not_taken_as_prepared(pg_server: str) -> None:
    async def scenario(conn: PgConnection) -> tuple[str, bytes | None, bytes | None]:
        with pytest.raises(PgError) as failed:
            await conn.pipeline([("SELECT 1 / 0", (), True), ("SELECT 2", (), True)])
        # Had "SELECT 2" been recorded, binding it now would fail with 26000.
        again = await conn.pipeline([("SELECT 2", (), True), COUNT_PREPARED])
        return failed.value.sqlstate, again[0][0][0], again[1][0][0]

    assert _with_connection(pg_server, scenario) == ("22012", b"2", b"2")


def test_a_statement_that_fails_to_parse_is_parsed_again_next_time(pg_server: str) -> None:
    async def scenario(conn: PgConnection) -> list[str]:
        states = []
        for _ in range(2):
            with pytest.raises(PgError) as failed:
                await conn.pipeline([("SELECT no_such_column", (), True)])
            states.append(failed.value.sqlstate)
        return states

    assert _with_connection(pg_server, scenario) == ["42703", "42703"]


def test_a_pipeline_is_one_transaction_rolled_back_as_a_whole(pg_server: str) -> None:
    async def scenario(conn: PgConnection) -> tuple[str, bytes, bytes | None]:
        await conn.query("CREATE TEMP TABLE pipeline_probe (n int)")
        with pytest.raises(PgError) as failed:
            await conn.pipeline([("INSERT INTO pipeline_probe VALUES (1)", (), False),
                                 ("SELECT 1 / 0", (), False)])
        rows = await conn.pipeline([("SELECT count(*) FROM pipeline_probe", (), False)])
        return failed.value.sqlstate, conn.tx_status, rows[0][0][0]

    # The insert went with the failed division: no ROLLBACK needed, the connection is idle.
    assert _with_connection(pg_server, scenario) == ("22012", b"I", b"0")
