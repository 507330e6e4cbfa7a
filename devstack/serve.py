"""Run an app on 127.0.0.1 in a background thread (tests, the stack runner): an ASGI app under
uvicorn, or a `NativeApp` (its own HTTP server, like the gateway's) on a uvloop event loop."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import uvicorn
import uvloop

from devstack.ports import free_port, port_is_free


@runtime_checkable
class NativeApp(Protocol):
    async def serve(self, sock: socket.socket, started: Callable[[], None],
                    stop: asyncio.Event) -> None: ...


def listening_socket(port: int, *, reuse_port: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class ServerThread:
    """`with ServerThread(app) as server: httpx.get(server.url + "/...")`; stopped on exit."""

    def __init__(self, app: Any, port: int | None = None, *, name: str = "server",
                 log_level: str = "warning", access_log: bool = False) -> None:
        self.port = free_port(port)
        self.name = name
        self._app = app
        self._log_level = log_level
        self._access_log = access_log
        self._native: NativeApp | None = app if isinstance(app, NativeApp) else None
        self._prepare()

    def _prepare(self) -> None:
        """A fresh server and thread for `self.port`."""
        self._started = threading.Event()
        self._failed: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._server: uvicorn.Server | None = None
        if self._native is None:
            self._server = uvicorn.Server(uvicorn.Config(
                self._app, host="127.0.0.1", port=self.port, log_level=self._log_level,
                access_log=self._access_log, lifespan="on", loop="uvloop", http="httptools",
                timeout_graceful_shutdown=3))
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        if self._server is not None:
            try:
                asyncio.run(self._server.serve())
            except BaseException as exc:  # uvicorn exits when it cannot bind; start() reports
                self._failed = exc
            return
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(self._serve_native())
        except BaseException as exc:  # reported by start()
            self._failed = exc

    async def _serve_native(self) -> None:
        assert self._native is not None
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        sock = listening_socket(self.port)
        try:
            await self._native.serve(sock, self._started.set, self._stop)
        finally:
            sock.close()  # already closed (detached) by its server, unless serve failed first

    def _is_started(self) -> bool:
        return self._server.started if self._server is not None else self._started.is_set()

    def start(self, timeout: float = 15.0, attempts: int = 3) -> ServerThread:
        """Serve; when another process took the port between choosing and binding it, choose a
        free port again (`port` and `url` follow)."""
        for attempt in range(attempts):
            try:
                return self._start(timeout)
            except RuntimeError:
                if attempt + 1 == attempts or port_is_free(self.port):
                    raise
                self.port = free_port(None)
                self._prepare()
        return self

    def _start(self, timeout: float) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._is_started():
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start on port {self.port}"
                                   ) from self._failed
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        elif self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
