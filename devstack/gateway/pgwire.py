"""A PostgreSQL protocol (v3) client for the gateway's request path.

Every request is one round trip: its statements pipelined (extended protocol, text parameters,
prepared statements kept per connection) or one simple-query string, answered by a few small
rows. Through libpq each wait re-registered the socket with the event loop and psycopg's pool and
cursor layers cost more CPU than the exchange itself; here the socket stays registered (an asyncio
Protocol) and a reply is parsed in one pass when it arrives. Values come back as text, as the
statements build JSON in SQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

Row = list[bytes | None]
# (text, text-format parameters, prepare and keep it on the connection)
Statement = tuple[str, Sequence[str | None], bool]

_PREPARED_MAX = 256
_EXECUTE = b"E\x00\x00\x00\x09\x00\x00\x00\x00\x00"  # unnamed portal, all rows
_SYNC = b"S\x00\x00\x00\x04"

_TERMINATE = b"X\x00\x00\x00\x04"


class PgError(Exception):
    """An ErrorResponse of the server (fields by their protocol codes), or, with an empty
    `sqlstate`, a connection that failed or was lost."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        self.sqlstate = fields.get("C", "")
        self.message = fields.get("M", "")
        self.detail = fields.get("D")
        self.hint = fields.get("H")
        super().__init__(self.message)


def connection_error(message: str) -> PgError:
    return PgError({"M": message})


def error_fields(body: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in body.split(b"\x00"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


class WireProtocol(asyncio.Protocol):
    """Frames backend messages. During startup they queue in `inbox`; afterwards each reply
    (everything up to ReadyForQuery) is gathered into `results` and wakes `waiter`."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.inbox: list[tuple[int, bytes]] | None = []
        self.raw = False  # the one-byte answer to an SSLRequest is not a framed message
        self.results: list[list[Row]] = []
        self.rows: list[Row] = []
        self.error: dict[str, str] | None = None
        self.parsed = 0  # ParseComplete messages of the current reply
        self.lost: BaseException | None = None
        self.tx_status = b"I"

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("the server closed the connection")
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if self.raw:
            return self._wake()
        pos, end = 0, len(buf)
        startup = self.inbox is not None
        while end - pos >= 5:
            size = int.from_bytes(buf[pos + 1:pos + 5], "big")
            if end - pos < size + 1:
                break
            kind = buf[pos]
            if startup:
                self._message(kind, bytes(buf[pos + 5:pos + 1 + size]))
            elif kind == 68:  # DataRow, parsed in place
                row: Row = []
                at = pos + 7
                for _ in range(int.from_bytes(buf[pos + 5:pos + 7], "big")):
                    length = int.from_bytes(buf[at:at + 4], "big", signed=True)
                    at += 4
                    if length < 0:
                        row.append(None)
                    else:
                        row.append(bytes(buf[at:at + length]))
                        at += length
                self.rows.append(row)
            elif kind in (67, 73):  # CommandComplete, EmptyQueryResponse
                self.results.append(self.rows)
                self.rows = []
            elif kind == 90:  # ReadyForQuery
                self.tx_status = bytes(buf[pos + 5:pos + 6])
                self._wake()
            elif kind == 49:  # ParseComplete
                self.parsed += 1
            elif kind == 69:  # ErrorResponse: the server skips the rest of the query string
                self.error = error_fields(bytes(buf[pos + 5:pos + 1 + size]))
            # BindComplete, CloseComplete, RowDescription, NoticeResponse, ParameterStatus and
            # NotificationResponse need nothing.
            pos += size + 1
        del buf[:pos]

    def _message(self, kind: int, body: bytes) -> None:
        assert self.inbox is not None
        self.inbox.append((kind, body))
        self._wake()


_NULL = b"\xff\xff\xff\xff"


def _bind(name: str, params: Sequence[str | None]) -> bytes:
    """Bind the unnamed portal: every parameter and result in text format."""
    values = b"".join(_NULL if value is None else len(data := value.encode()).to_bytes(4, "big")
                      + data for value in params)
    head = b"\x00" + name.encode() + b"\x00\x00\x00" + len(params).to_bytes(2, "big")
    return b"B" + (len(head) + len(values) + 6).to_bytes(4, "big") + head + values + b"\x00\x00"


class PgConnection:
    def __init__(self, transport: asyncio.Transport, protocol: WireProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._loop = asyncio.get_running_loop()
        self._busy = False
        self._prepared: dict[str, str] = {}  # statement text -> prepared statement name
        self._counter = 0
        self.defaults: dict[str, str] = {}  # the server's transaction defaults, set by the pool

    @property
    def broken(self) -> bool:
        """Lost, or interrupted mid-exchange (its protocol state is then unknown)."""
        return self._busy or self._protocol.lost is not None

    @property
    def tx_status(self) -> bytes:
        """b"I" idle, b"T" in a transaction block, b"E" in a failed one."""
        return self._protocol.tx_status

    async def query(self, text: str) -> list[list[Row]]:
        """Run a query string (one or more statements, simple protocol); the rows of each.

        Raises PgError for the first failed statement (the server runs none after it)."""
        data = text.encode()
        return await self._exchange(b"Q" + (len(data) + 5).to_bytes(4, "big") + data + b"\x00")

    async def pipeline(self, statements: Sequence[Statement]) -> list[list[Row]]:
        """Run statements with text parameters in one round trip (extended protocol, one Sync:
        one implicit transaction unless they BEGIN one); the rows of each statement.

        A statement with `cache` is prepared once per connection and then only bound, which
        spares the server its parse and plan; the others use the unnamed statement."""
        parts: list[bytes] = []
        parses: list[tuple[str, str] | None] = []
        prepared = self._prepared
        for text, params, cache in statements:
            name = prepared.pop(text, None) if cache else None
            if name is not None:
                prepared[text] = name  # most recently used last: eviction takes the first
            else:
                if cache:
                    name = self._new_name(parts)
                    parses.append((text, name))
                else:
                    name = ""
                    parses.append(None)
                data = text.encode()
                parts.append(b"P" + (len(name) + len(data) + 8).to_bytes(4, "big")
                             + name.encode() + b"\x00" + data + b"\x00\x00\x00")
            parts.append(_bind(name, params))
            parts.append(_EXECUTE)
        parts.append(_SYNC)
        self._protocol.parsed = 0
        try:
            return await self._exchange(b"".join(parts))
        finally:
            # Parses complete in order: the first `parsed` of them exist on the server now.
            for entry in parses[:self._protocol.parsed]:
                if entry is not None:
                    prepared[entry[0]] = entry[1]

    def _new_name(self, parts: list[bytes]) -> str:
        if len(self._prepared) >= _PREPARED_MAX:
            # Closed first in the message, where nothing before it can fail.
            oldest = next(iter(self._prepared))
            name = self._prepared.pop(oldest).encode()
            parts.insert(0, b"C" + (len(name) + 6).to_bytes(4, "big") + b"S" + name + b"\x00")
        self._counter += 1
        return f"mv{self._counter}"

    async def _exchange(self, message: bytes) -> list[list[Row]]:
        protocol = self._protocol
        if self.broken:
            raise connection_error("the connection to the server was lost")
        self._transport.write(message)
        protocol.results, protocol.rows, protocol.error = [], [], None
        waiter = protocol.waiter = self._loop.create_future()
        self._busy = True
        await waiter
        if protocol.lost is not None:
            raise connection_error(f"the connection to the server was lost: {protocol.lost}")
        self._busy = False
        if protocol.error is not None:
            raise PgError(protocol.error)
        return protocol.results

    def close(self) -> None:
        if not self._transport.is_closing():
            if self._protocol.lost is None:
                self._transport.write(_TERMINATE)
            self._transport.close()
