"""The gateway's HTTP/1.1 server: an asyncio Protocol over httptools' parser that hands each
request under `/rest/v1` straight to the gateway.

A generic ASGI server spends about as much CPU per request as the gateway's own work (scope and
message dicts, receive/send coroutines, a write per message); this one parses in C, keeps the
connection's requests in order (keep-alive and pipelining, chunked and `Expect: 100-continue`
bodies) and writes each response with one call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import unquote

import httptools

from devstack.gateway.handler import Gateway
from devstack.gateway.response import Response
from devstack.gateway.settings import GatewaySettings

logger = logging.getLogger("devstack.gateway")

PREFIX = "/rest/v1"
_IDLE_TIMEOUT = 30.0  # seconds a keep-alive connection may sit idle
_MAX_QUEUED = 16  # pipelined requests read ahead before reading pauses
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_NO_BODY = frozenset((204, 304))
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# method, target, headers, body, keep-alive, HTTP/1.0, refusal status (413/414) or 0
Request = tuple[str, bytes, list[tuple[bytes, bytes]], bytes, bool, bool, int]
_REFUSALS = {
    413: b'{"code":"GW413","details":"The request body is larger than %d bytes.","hint":null,'
         b'"message":"Payload Too Large"}',
    414: b'{"code":"GW414","details":"The request target is longer than %d bytes.","hint":null,'
         b'"message":"URI Too Long"}',
}


class _Clock:
    """The Date header, formatted once per second."""

    def __init__(self) -> None:
        self._second = 0
        self._line = b""

    def date_line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = b"date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self._line


def _clean(value: str) -> bytes:
    """A header name or value as bytes; CR and LF (from response.headers set in SQL) cannot
    split it."""
    if "\r" in value or "\n" in value:
        value = value.replace("\r", " ").replace("\n", " ")
    return value.encode("latin-1", "replace")


def encode(response: Response, clock: _Clock, *, keep_alive: bool, head: bool,
           http10: bool = False) -> bytes:
    status = response.status
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown")),
             clock.date_line()]
    for name, value in response.headers.items():
        parts.append(_clean(name) + b": " + _clean(value) + b"\r\n")
    if status not in _NO_BODY:
        parts.append(b"content-length: %d\r\n" % len(response.body))
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    elif http10:  # HTTP/1.0 closes by default: say the connection stays
        parts.append(b"connection: keep-alive\r\n")
    parts.append(b"\r\n")
    if not head and status not in _NO_BODY:
        parts.append(response.body)
    return b"".join(parts)


def _split_target(target: bytes) -> tuple[str, str]:
    """(percent-decoded path, raw query string) of an origin-form or absolute-form target."""
    if not target.startswith(b"/"):
        url = httptools.parse_url(target)
        path, query = url.path or b"/", url.query or b""
    else:
        path, _, query = target.partition(b"?")
    text = path.decode("latin-1")
    if "%" in text:
        text = unquote(text)
    return text, query.decode("latin-1")


class _HttpConnection(asyncio.Protocol):
    def __init__(self, server: GatewayServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.target = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.body_size = 0
        self.refusal = 0  # 413 or 414 once the request is over a limit; the rest is discarded
        self.max_body = server.gateway.settings.max_body_bytes
        self.max_url = server.gateway.settings.max_url_bytes
        self.queue: collections.deque[Request] = collections.deque()
        self.task: asyncio.Task[None] | None = None
        self.idle: asyncio.TimerHandle | None = None
        self.active_at = self.loop.time()  # last bytes read or response written
        self.paused = False
        self.rejected = False  # a malformed request behind ones still being answered

    # -- transport callbacks ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.queue.clear()
        if self.idle is not None:
            self.idle.cancel()

    def data_received(self, data: bytes) -> None:
        self.active_at = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no protocol switching here; the request itself is answered as HTTP/1.1
        except httptools.HttpParserError:
            if self.task is None:
                self._reject(400, b"Bad Request")
            else:  # answered in order, after the requests read before it
                assert self.transport is not None
                self.transport.pause_reading()
                self.rejected = True

    # -- parser callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.target = b""
        self.headers = []
        self.body = []
        self.body_size = 0
        self.refusal = 0

    def on_url(self, url: bytes) -> None:
        if self.refusal:
            return
        self.target += url
        if len(self.target) > self.max_url:
            self.refusal, self.target = 414, b""

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.task is not None or self.queue or self.refusal:
            return  # a 100 now would answer an earlier request (or invite a refused body)
        expects = False
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length" and value.strip().isdigit() \
                    and int(value) > self.max_body:
                self.refusal = 413  # announced too large: no 100, the body is discarded
                return
            if lowered == b"expect" and value.lower() == b"100-continue":
                expects = True
        if expects:
            assert self.transport is not None
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        if self.refusal:
            return
        self.body_size += len(body)
        if self.body_size > self.max_body:  # chunked: no length was announced
            self.refusal, self.body = 413, []
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        # A refused request closes the connection after its answer: the client may still be
        # sending what was not read.
        request = (self.parser.get_method().decode("latin-1"), self.target, self.headers,
                   b"".join(self.body), self.parser.should_keep_alive() and not self.refusal,
                   self.parser.get_http_version() == "1.0", self.refusal)
        if self.task is None:
            self.task = self.loop.create_task(self._serve(request))
            return
        self.queue.append(request)
        if len(self.queue) >= _MAX_QUEUED and not self.paused:
            assert self.transport is not None
            self.transport.pause_reading()
            self.paused = True

    # -- responses ------------------------------------------------------------------------------
    async def _serve(self, request: Request) -> None:
        transport = self.transport
        assert transport is not None
        while True:
            method, target, raw_headers, body, keep_alive, http10, refusal = request
            response = self._refused(refusal) if refusal else \
                await self._respond(method, target, raw_headers, body)
            keep_alive = keep_alive and not self.server.stopping
            transport.write(encode(response, self.server.clock, keep_alive=keep_alive,
                                   head=method == "HEAD", http10=http10))
            if not keep_alive:
                transport.close()
                break
            if not self.queue:
                if self.rejected:
                    self._reject(400, b"Bad Request")
                break
            request = self.queue.popleft()
            if self.paused and len(self.queue) < _MAX_QUEUED // 2:
                transport.resume_reading()
                self.paused = False
        self.task = None
        self.active_at = self.loop.time()

    async def _respond(self, method: str, target: bytes, raw_headers: list[tuple[bytes, bytes]],
                       body: bytes) -> Response:
        path, query = _split_target(target)
        if path == PREFIX:
            path = "/"
        elif path.startswith(PREFIX + "/"):
            path = path[len(PREFIX):]
        else:
            return Response(404, {"content-type": "text/plain; charset=utf-8"}, b"Not Found")
        headers: dict[str, str] = {}
        for raw_name, raw_value in raw_headers:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("utf-8", "replace")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        try:
            return await self.server.gateway.handle(method, path, query, headers, body)
        except Exception:
            logger.exception("gateway error on %s %s", method, path)
            return Response(500, {"content-type": "application/json; charset=utf-8"},
                            b'{"code":"PGRST000","details":null,"hint":null,'
                            b'"message":"Internal server error"}')

    def _refused(self, status: int) -> Response:
        limit = self.max_body if status == 413 else self.max_url
        return Response(status, {"content-type": "application/json; charset=utf-8",
                                 "proxy-status": f"PostgREST; error=GW{status}"},
                        _REFUSALS[status] % limit)

    def _reject(self, status: int, text: bytes) -> None:
        assert self.transport is not None
        response = Response(status, {"content-type": "text/plain; charset=utf-8"}, text)
        self.transport.write(encode(response, self.server.clock, keep_alive=False, head=False))
        self.transport.close()

    def _arm_idle(self, delay: float | None = None) -> None:
        """One timer per connection, re-armed when it fires (not per request): it closes a
        connection that has neither sent bytes nor been answered for the idle timeout,
        including one that stalls halfway through a request."""
        if self.transport is not None and not self.transport.is_closing():
            self.idle = self.loop.call_later(_IDLE_TIMEOUT if delay is None else delay,
                                             self._check_idle)

    def _check_idle(self) -> None:
        remaining = self.active_at + _IDLE_TIMEOUT - self.loop.time()
        if self.task is not None:  # a request is being answered: not idle
            self._arm_idle()
        elif remaining > 0:
            self._arm_idle(remaining)
        elif self.transport is not None:
            self.transport.close()


class GatewayServer:
    """The gateway behind its HTTP server; `serve` runs until `stop` is set."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.gateway = Gateway(settings)
        self.clock = _Clock()
        self.connections: set[_HttpConnection] = set()
        self.stopping = False

    async def serve(self, sock: socket.socket, started: Callable[[], None],
                    stop: asyncio.Event, *, grace: float = 3.0) -> None:
        await self.gateway.start()
        try:
            loop = asyncio.get_running_loop()
            server = await loop.create_server(lambda: _HttpConnection(self), sock=sock)
            started()
            await stop.wait()
            self.stopping = True
            server.close()
            busy = [c.task for c in self.connections if c.task is not None]
            for conn in list(self.connections):
                if conn.task is None and conn.transport is not None:
                    conn.transport.close()
            if busy:
                await asyncio.wait(busy, timeout=grace)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await server.wait_closed()
        finally:
            await self.gateway.stop()
