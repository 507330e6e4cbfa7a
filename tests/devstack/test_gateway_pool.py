"""The gateway's connection pool and how the executor reports its failures."""

from __future__ import annotations

import asyncio
import time

import pytest

from devstack.gateway.errors import ApiError
from devstack.gateway.executor import Executor, Transaction
from devstack.gateway.pgconnect import connect
from devstack.gateway.pgwire import PgConnection
from devstack.gateway.pool import Pool, PoolClosed, PoolTimeout
from devstack.ports import free_port


async def backend_pid(conn: PgConnection) -> bytes | None:
    return (await conn.query("select pg_backend_pid()"))[0][0][0]


def anon_transaction() -> Transaction:
    return Transaction(role="anon", role_settings={}, search_path="public", claims={},
                       method="GET", path="/items", headers={}, cookies={}, read_only=True)


def test_never_opens_more_than_max_size_connections(pg_server: str) -> None:
    async def scenario() -> tuple[set[bytes | None], list[int]]:
        pool = Pool(pg_server, min_size=0, max_size=3, timeout=5)
        pids: set[bytes | None] = set()
        sizes: list[int] = []

        async def request() -> None:
            conn = await pool.acquire()
            sizes.append(pool.size)
            try:
                rows = (await conn.query("select pg_backend_pid(), pg_sleep(0.05)"))[0]
                pids.add(rows[0][0])
            finally:
                pool.release(conn)
            sizes.append(pool.size)

        try:
            await asyncio.gather(*(request() for _ in range(20)))
        finally:
            await pool.close()
        return pids, sizes

    pids, sizes = asyncio.run(scenario())
    assert len(sizes) == 40  # all 20 requests ran
    assert 1 <= len(pids) <= 3
    assert max(sizes) <= 3


def test_a_waiter_times_out_while_every_connection_is_held(pg_server: str) -> None:
    async def scenario() -> tuple[float, bool, bytes | None, int]:
        pool = Pool(pg_server, min_size=1, max_size=1, timeout=0.2)
        await pool.open()
        try:
            held = await pool.acquire()
            started = time.monotonic()
            with pytest.raises(PoolTimeout):
                await pool.acquire()
            waited = time.monotonic() - started
            pool.release(held)
            again = await pool.acquire()
            try:
                return waited, again is held, await backend_pid(again), pool.size
            finally:
                pool.release(again)
        finally:
            await pool.close()

    waited, reused, pid, size = asyncio.run(scenario())
    assert 0.15 <= waited < 2
    assert reused
    assert pid is not None
    assert size == 1


def test_a_waiter_gets_the_connection_released_while_it_waits(pg_server: str) -> None:
    async def scenario() -> tuple[bool, int]:
        pool = Pool(pg_server, min_size=0, max_size=1, timeout=2)
        try:
            held = await pool.acquire()
            waiter = asyncio.create_task(pool.acquire())
            await asyncio.sleep(0.05)
            assert not waiter.done()
            pool.release(held)
            handed = await asyncio.wait_for(waiter, 1)
            pool.release(handed)
            return handed is held, pool.size
        finally:
            await pool.close()

    assert asyncio.run(scenario()) == (True, 1)


def test_a_connection_terminated_while_idle_is_replaced(pg_server: str) -> None:
    async def scenario() -> tuple[bytes | None, bytes | None, bool, int]:
        pool = Pool(pg_server, min_size=1, max_size=1, timeout=5)
        await pool.open()
        killer = await connect(pg_server, timeout=5)
        try:
            first = await pool.acquire()
            old_pid = await backend_pid(first)
            pool.release(first)
            assert old_pid is not None
            await killer.query(f"select pg_terminate_backend({old_pid.decode()})")
            async with asyncio.timeout(5):
                while not first.broken:  # the idle connection hears the server hang up
                    await asyncio.sleep(0.01)
            second = await pool.acquire()
            try:
                return old_pid, await backend_pid(second), second is first, pool.size
            finally:
                pool.release(second)
        finally:
            killer.close()
            await pool.close()

    old_pid, new_pid, same, size = asyncio.run(scenario())
    assert new_pid is not None
    assert new_pid != old_pid
    assert not same
    assert size == 1


def test_acquire_after_close_raises_pool_closed(pg_server: str) -> None:
    async def scenario() -> int:
        pool = Pool(pg_server, min_size=1, max_size=1, timeout=2)
        await pool.open()
        held = await pool.acquire()
        waiter = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0.05)
        await pool.close()
        with pytest.raises(PoolClosed):
            await waiter  # a waiter hears it too
        with pytest.raises(PoolClosed):
            await pool.acquire()
        pool.release(held)  # handed back after close: closed, not kept
        async with asyncio.timeout(2):
            while not held.broken:
                await asyncio.sleep(0.01)
        return pool.size

    assert asyncio.run(scenario()) == 0


def test_executor_maps_a_pool_timeout_to_504_pgrst003(pg_server: str) -> None:
    async def scenario() -> ApiError:
        executor = Executor(pg_server, min_size=0, max_size=1, timeout=0.2)
        try:
            held = await executor.pool.acquire()
            try:
                with pytest.raises(ApiError) as caught:
                    await executor.run(anon_transaction(), "select 1", authenticated=False)
            finally:
                executor.pool.release(held)
            return caught.value
        finally:
            await executor.close()

    error = asyncio.run(scenario())
    assert (error.status, error.code) == (504, "PGRST003")
    assert error.message == "Timed out acquiring connection from connection pool."


def test_executor_maps_an_unreachable_database_to_503_pgrst001() -> None:
    port = free_port()

    async def scenario() -> tuple[ApiError, int]:
        executor = Executor(f"postgresql://postgres@127.0.0.1:{port}/postgres",
                            min_size=0, max_size=1, timeout=2)
        try:
            with pytest.raises(ApiError) as caught:
                await executor.run(anon_transaction(), "select 1", authenticated=False)
            return caught.value, executor.pool.size
        finally:
            await executor.close()

    error, size = asyncio.run(scenario())
    assert (error.status, error.code) == (503, "PGRST001")
    assert f"port {port}" in (error.details or "")
    assert size == 0  # the failed attempt does not keep a slot
