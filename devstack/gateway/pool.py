"""A pool of protocol connections: the most recently used idle one first, new ones up to
`max_size`, then a FIFO wait bounded by `timeout`; lost connections are dropped and replaced."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable

from devstack.gateway.pgconnect import connect
from devstack.gateway.pgwire import PgConnection


class PoolTimeout(Exception):
    """No connection became free within the pool's timeout."""


class PoolClosed(Exception):
    pass


class Pool:
    def __init__(self, conninfo: str, *, min_size: int, max_size: int, timeout: float,
                 setup: Callable[[PgConnection], Awaitable[None]] | None = None) -> None:
        self.conninfo = conninfo
        self.setup = setup
        self.min_size = min_size
        self.max_size = max(max_size, 1)
        self.timeout = timeout
        self._idle: list[PgConnection] = []
        self._waiters: collections.deque[asyncio.Future[PgConnection]] = collections.deque()
        self._size = 0  # connections open or being opened
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def size(self) -> int:
        return self._size

    async def open(self) -> None:
        self._closed = False
        count = max(self.min_size - self._size, 0)
        self._size += count
        opened = await asyncio.gather(*(self._connect() for _ in range(count)),
                                      return_exceptions=True)
        failures = [c for c in opened if isinstance(c, BaseException)]
        self._size -= len(failures)
        for conn in opened:
            if isinstance(conn, PgConnection):
                self._idle.append(conn)
        if failures:
            raise failures[0]

    async def _connect(self) -> PgConnection:
        conn = await connect(self.conninfo, timeout=self.timeout)
        if self.setup is not None:
            try:
                await self.setup(conn)
            except BaseException:
                conn.close()
                raise
        return conn

    async def acquire(self) -> PgConnection:
        if self._closed:
            raise PoolClosed("the pool is closed")
        while self._idle:
            conn = self._idle.pop()
            if not conn.broken:
                return conn
            self._discard(conn)
        if self._size < self.max_size:
            self._size += 1
            try:
                return await self._connect()
            except BaseException:
                self._size -= 1
                raise
        waiter: asyncio.Future[PgConnection] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.timeout):
                return await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(waiter.result())  # handed over just as the wait ended
            if isinstance(exc, TimeoutError):
                raise PoolTimeout(f"no connection within {self.timeout} s") from exc
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def release(self, conn: PgConnection) -> None:
        if conn.broken or self._closed:
            self._discard(conn)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _discard(self, conn: PgConnection) -> None:
        conn.close()
        self._size -= 1
        if self._waiters and not self._closed:
            self._size += 1
            task = asyncio.get_running_loop().create_task(self._replace())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _replace(self) -> None:
        try:
            conn = await self._connect()
        except Exception as exc:  # the next waiter hears why
            self._size -= 1
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(exc)
                    return
            return
        self.release(conn)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        while self._idle:
            self._idle.pop().close()
            self._size -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosed("the pool is closed"))

