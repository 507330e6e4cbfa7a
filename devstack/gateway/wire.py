"""One simple-query round trip straight on the connection's libpq handle (`psycopg.pq`).

The request transaction is a single text message whose results are a handful of small rows,
so psycopg's cursor machinery (adaptation, per-wait reader registration, result objects) costs
more CPU than the exchange itself. Errors are still psycopg's own exception classes with the
server's diagnostics (`psycopg.errors.error_from_result`), so the error mapping is unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg import errors, pq

_FATAL = pq.ExecStatus.FATAL_ERROR


async def _ready(fd: int, *, write: bool) -> None:
    """Wait until the socket is readable (or, with `write`, writable or readable)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, wake)
    if write:
        loop.add_writer(fd, wake)
    try:
        await fut
    finally:
        loop.remove_reader(fd)
        if write:
            loop.remove_writer(fd)


async def simple_query(conn: psycopg.AsyncConnection[Any], query: str) -> list[pq.abc.PGresult]:
    """Send `query` (one or more statements, no parameters) and collect every result.

    Raises the psycopg error of the first failed statement (the server skips the rest)."""
    pgconn = conn.pgconn
    fd = pgconn.socket
    pgconn.send_query(query.encode(conn.info.encoding))
    while pgconn.flush():
        # The server may answer (e.g. an error) before it has read the whole message.
        await _ready(fd, write=True)
        pgconn.consume_input()
    results: list[pq.abc.PGresult] = []
    while True:
        while pgconn.is_busy():
            await _ready(fd, write=False)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            break
        results.append(result)
    for result in results:
        if result.status == _FATAL:
            raise errors.error_from_result(result, encoding=conn.info.encoding)
    return results


def text_row(result: pq.abc.PGresult, encoding: str) -> list[str | None] | None:
    """The first row of a result as text values (None for SQL NULL), or None without rows."""
    if result.ntuples == 0:
        return None
    row: list[str | None] = []
    for col in range(result.nfields):
        value = result.get_value(0, col)
        row.append(None if value is None else bytes(value).decode(encoding))
    return row
