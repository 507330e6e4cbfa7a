"""A port another process takes between choosing it and binding it is chosen again."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from devstack.postgres import PostgresCluster
from devstack.redis_server import RedisServer, ping
from devstack.serve import ServerThread


@contextmanager
def taken(port: int) -> Iterator[socket.socket]:
    """Another process listening on `port` (what a race with another program looks like)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen(1)
        yield sock


def _hello(request: object) -> PlainTextResponse:
    return PlainTextResponse("hello")


def test_a_server_thread_whose_port_was_taken_serves_on_another():
    server = ServerThread(Starlette(routes=[Route("/", _hello)]), name="raced")
    chosen = server.port
    with taken(chosen), server:
        assert server.port != chosen
        assert httpx.get(server.url + "/").text == "hello"


def test_redis_whose_port_was_taken_starts_on_another(tmp_path):
    server = RedisServer(tmp_path / "redis")
    chosen = server.port
    with taken(chosen), server:
        assert server.port != chosen and ping(server.url)


def test_postgres_whose_port_was_taken_starts_on_another(tmp_path):
    cluster = PostgresCluster(tmp_path / "pg")
    chosen = cluster.port
    try:
        with taken(chosen):
            cluster.start()
            assert cluster.port != chosen and cluster.running()
    finally:
        cluster.destroy()
