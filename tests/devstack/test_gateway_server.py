"""The gateway's HTTP/1.1 server on the wire (keep-alive, pipelining, chunked and 100-continue
bodies, malformed requests, connection closing, header hygiene) and `ServerThread` around it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httpx
import psycopg
import pytest

import devstack.gateway.server as gateway_server
from devstack.gateway import GatewaySettings, create_app
from devstack.ports import free_port, port_is_free
from devstack.serve import ServerThread
from tests.devstack.conftest import GW_SECRET, login_url

THAI_TABLE = "ดวงชะตา"


@dataclass
class Reply:
    status: int
    reason: str
    headers: list[tuple[str, str]]  # names lower-cased, in wire order
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n == name]
        assert len(values) <= 1, f"{name} repeated: {values}"
        return values[0] if values else None

    def json(self) -> object:
        return json.loads(self.body)


class Wire:
    """A raw HTTP/1.1 client connection that reads responses exactly as framed by the server."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed by the server; unread: {self.buffer!r}")
        self.buffer += chunk

    def head(self) -> bytes:
        """The next response's status line and header lines (up to the blank line)."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        return head

    def reply(self, *, head_request: bool = False) -> Reply:
        raw = self.head()
        status_line, *lines = raw.decode("latin-1").split("\r\n")
        version, status, reason = status_line.split(" ", 2)
        assert version == "HTTP/1.1", status_line
        headers = []
        for line in lines:
            name, sep, value = line.partition(":")
            assert sep and name and name == name.strip(), f"not a header line: {line!r}"
            headers.append((name.lower(), value.strip()))
        length = next((int(v) for n, v in headers if n == "content-length"), 0)
        if head_request:
            length = 0
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Reply(int(status), reason, headers, body)

    def is_closed_by_server(self, within: float = 5.0) -> bool:
        """True when the server closes the connection (EOF) with nothing more sent."""
        self.sock.settimeout(within)
        try:
            rest = self.sock.recv(65536)
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        assert self.buffer + rest == b"", f"unexpected bytes: {self.buffer + rest!r}"
        return True


def get(target: str, *extra: str, method: str = "GET", version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {target} {version}", "Host: gateway", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture()
def wire(gateway_url: str) -> Iterator[Wire]:
    conn = Wire(gateway_url)
    yield conn
    conn.close()


def superuser(gw_database: str) -> psycopg.Connection:
    return psycopg.connect(gw_database, autocommit=True)


def wait_until_served(rest: httpx.Client, path: str, method: str = "GET") -> httpx.Response:
    """The gateway reloads its schema cache on NOTIFY (or on an unknown name, at most every
    0.2 s): poll until a new object is known."""
    deadline = time.monotonic() + 5
    while True:
        r = rest.request(method, path)
        if r.status_code != 404 or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


# -- keep-alive, pipelining, request bodies ------------------------------------------------


def test_pipelined_requests_are_answered_in_order_on_one_connection(wire: Wire) -> None:
    # The first is slower: answering each as soon as it is ready would swap them.
    wire.send(get("/rest/v1/rpc/sleepy?seconds=0.2") + get("/rest/v1/items?select=id&id=eq.3"))
    first, second = wire.reply(), wire.reply()
    assert (first.status, first.json()) == (200, 1)
    assert (second.status, second.json()) == (200, [{"id": 3}])
    assert first.header("connection") is None
    # The connection stays open for more.
    wire.send(get("/rest/v1/items?select=id&id=eq.4"))
    assert wire.reply().json() == [{"id": 4}]


def test_many_pipelined_requests_beyond_the_read_ahead_limit_all_come_back_in_order(
        wire: Wire) -> None:
    count = gateway_server._MAX_QUEUED * 3
    wire.send(b"".join(get(f"/rest/v1/numbers?select=n&n=eq.{i}") for i in range(1, count + 1)))
    assert [wire.reply().json() for _ in range(count)] == [[{"n": i}] for i in
                                                           range(1, count + 1)]
    wire.send(get("/rest/v1/numbers?select=n&n=eq.1200"))
    assert wire.reply().json() == [{"n": 1200}]


def test_chunked_request_body_is_received_whole(wire: Wire) -> None:
    payload = json.dumps({"payload": {"text": "ดวงความรัก", "n": [1, 2, 3]}},
                         ensure_ascii=False).encode()
    cut = payload.index("ความ".encode()) + 1  # inside a multi-byte character
    chunks = [payload[:5], payload[5:cut], payload[cut:]]
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    wire.send(get("/rest/v1/rpc/echo", "Content-Type: application/json",
                  "Transfer-Encoding: chunked", method="POST"))
    for part in (body[:7], body[7:30], body[30:]):  # chunk framing split across writes too
        wire.send(part)
        time.sleep(0.01)
    reply = wire.reply()
    assert reply.status == 200
    assert reply.json() == {"text": "ดวงความรัก", "n": [1, 2, 3]}


def test_expect_100_continue_gets_an_interim_response_before_the_body_is_sent(
        wire: Wire) -> None:
    body = b'{"a": 20, "b": 22}'
    wire.send(get("/rest/v1/rpc/add_them", "Content-Type: application/json",
                  f"Content-Length: {len(body)}", "Expect: 100-continue", method="POST"))
    # Nothing of the body has been sent: the server must answer 100 first.
    assert wire.head() == b"HTTP/1.1 100 Continue"
    wire.send(body)
    reply = wire.reply()
    assert (reply.status, reply.json()) == (200, 42)


def test_expect_100_continue_behind_a_pipelined_request_gets_no_interim_response(
        wire: Wire) -> None:
    body = b'{"a": 20, "b": 22}'
    # A 100 written now would be read as the answer to the slow request still in progress.
    wire.send(get("/rest/v1/rpc/sleepy?seconds=0.2")
              + get("/rest/v1/rpc/add_them", "Content-Type: application/json",
                    f"Content-Length: {len(body)}", "Expect: 100-continue", method="POST")
              + body)
    first, second = wire.reply(), wire.reply()
    assert (first.status, first.json()) == (200, 1)
    assert (second.status, second.json()) == (200, 42)


# -- malformed requests and connection closing ------------------------------------------------


@pytest.mark.parametrize("garbage", [
    b"NOT AN HTTP REQUEST\r\n\r\n",
    b"GET /rest/v1/items HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
    b"POST /rest/v1/rpc/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
], ids=["request-line", "header", "chunk-size"])
def test_malformed_request_gets_400_and_the_connection_is_closed(wire: Wire,
                                                                 garbage: bytes) -> None:
    wire.send(garbage)
    reply = wire.reply()
    assert reply.status == 400
    assert reply.header("connection") == "close"
    assert wire.is_closed_by_server()


def test_malformed_request_behind_pipelined_ones_is_answered_after_them(wire: Wire) -> None:
    wire.send(get("/rest/v1/rpc/sleepy?seconds=0.2") + get("/rest/v1/items?select=id&id=eq.3")
              + b"NOT AN HTTP REQUEST\r\n\r\n")
    first, second, rejected = wire.reply(), wire.reply(), wire.reply()
    assert (first.status, first.json()) == (200, 1)
    assert (second.status, second.json()) == (200, [{"id": 3}])
    assert (rejected.status, rejected.header("connection")) == (400, "close")
    assert wire.is_closed_by_server()


@pytest.mark.parametrize("request_bytes", [
    get("/rest/v1/items?select=id&id=eq.1", version="HTTP/1.0"),
    get("/rest/v1/items?select=id&id=eq.1", "Connection: close"),
], ids=["http-1.0", "connection-close"])
def test_response_closes_the_connection_when_the_client_asks(wire: Wire,
                                                             request_bytes: bytes) -> None:
    wire.send(request_bytes)
    reply = wire.reply()
    assert (reply.status, reply.json()) == (200, [{"id": 1}])
    assert reply.header("connection") == "close"
    assert wire.is_closed_by_server()


def test_http_1_0_keep_alive_keeps_the_connection(wire: Wire) -> None:
    wire.send(get("/rest/v1/items?select=id&id=eq.1", "Connection: keep-alive",
                  version="HTTP/1.0"))
    assert wire.reply().header("connection") == "keep-alive"
    wire.send(get("/rest/v1/items?select=id&id=eq.3"))
    assert wire.reply().json() == [{"id": 3}]


# -- response framing ------------------------------------------------------------------------


def test_head_has_the_get_headers_and_no_body(wire: Wire) -> None:
    target = "/rest/v1/items?select=id,name&order=id"
    # Pipelined: any body bytes after HEAD's headers would be read as the next status line.
    wire.send(get(target, "Prefer: count=exact", method="HEAD")
              + get(target, "Prefer: count=exact"))
    head, full = wire.reply(head_request=True), wire.reply()
    assert head.status == full.status == 200
    assert head.header("content-range") == full.header("content-range") == "0-4/5"
    assert head.header("content-type") == full.header("content-type") == (
        "application/json; charset=utf-8")
    assert len(full.body) > 0


def test_every_response_has_a_date_and_content_length_except_204(wire: Wire) -> None:
    wire.send(get("/rest/v1/items?select=id&id=eq.1")
              + get("/rest/v1/rpc/noop", "Content-Length: 0", method="POST")
              + get("/nowhere"))
    ok, no_content, missing = wire.reply(), wire.reply(), wire.reply()
    for reply in (ok, no_content, missing):
        assert (reply.header("date") or "").endswith(" GMT")
    assert ok.header("content-length") == str(len(ok.body))
    assert missing.header("content-length") == str(len(missing.body))
    assert no_content.status == 204
    assert no_content.header("content-length") is None


@pytest.mark.parametrize("path", ["/", "/nowhere", "/rest", "/rest/v1x", "/rest/v2/items"])
def test_paths_outside_the_prefix_get_404_text(gateway_url: str, path: str) -> None:
    r = httpx.get(gateway_url.removesuffix("/rest/v1") + path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == "Not Found"


@pytest.mark.parametrize("suffix", ["", "/"])
def test_the_prefix_itself_is_routed_to_the_gateway(gateway_url: str, suffix: str) -> None:
    r = httpx.get(gateway_url + suffix)
    assert r.text != "Not Found"
    # The gateway's own answer for the root: the OpenAPI document of the exposed schema.
    assert r.headers["content-type"].startswith("application/openapi+json")
    assert r.json()["swagger"] == "2.0"


def test_absolute_form_target_is_served(wire: Wire) -> None:
    wire.send(get("http://gateway/rest/v1/items?select=id&id=eq.3"))
    assert wire.reply().json() == [{"id": 3}]


# -- header hygiene and path decoding -----------------------------------------------------------


@pytest.fixture(scope="module")
def crlf_functions(gw_database: str) -> None:
    with superuser(gw_database) as conn:
        conn.execute(r"""
create or replace function public.gw_crlf_value() returns int language plpgsql as $$
begin
  perform set_config('response.headers',
    '[{"X-Probe": "a\r\nX-Injected: 1\r\n\r\nbody"}]', true);
  return 1;
end $$;
create or replace function public.gw_crlf_name() returns int language plpgsql as $$
begin
  perform set_config('response.headers', '[{"X-Evil\r\nX-Injected": "1"}]', true);
  return 1;
end $$;
grant execute on function public.gw_crlf_value(), public.gw_crlf_name()
  to anon, authenticated;
notify pgrst, 'reload schema';
""")


@pytest.mark.parametrize("function", ["gw_crlf_value", "gw_crlf_name"])
def test_crlf_in_a_sql_set_response_header_cannot_split_it(
        crlf_functions: None, rest: httpx.Client, wire: Wire, function: str) -> None:
    # (Both are created together; httpx refuses a header name with spaces, so wait on the other.)
    assert wait_until_served(rest, "/rpc/gw_crlf_value").status_code == 200
    wire.send(get(f"/rest/v1/rpc/{function}"))
    raw_head = wire.head()
    lines = raw_head.split(b"\r\n")
    # Every line is still one header: none starts with the injected name, none lacks a colon.
    assert not any(line.lower().startswith(b"x-injected") for line in lines[1:]), raw_head
    assert all(b": " in line for line in lines[1:]), raw_head
    # The injected text stays inside the one line it was set in.
    assert sum(b"X-Injected" in line for line in lines) == 1, raw_head
    length = int(next(line.partition(b": ")[2] for line in lines
                      if line.lower().startswith(b"content-length: ")))
    assert length == 1
    while len(wire.buffer) < length:
        wire._fill()
    assert wire.buffer == b"1"  # the function's result, with nothing injected before it


@pytest.fixture(scope="module")
def thai_table(gw_database: str) -> str:
    with superuser(gw_database) as conn:
        conn.execute(f"""
create table public."{THAI_TABLE}" (id int primary key, sign text not null);
grant select on public."{THAI_TABLE}" to anon, authenticated;
insert into public."{THAI_TABLE}" values (1, 'ราศีเมษ'), (2, 'ราศีพฤษภ');
notify pgrst, 'reload schema';
""")
    return THAI_TABLE


def test_percent_encoded_thai_table_name_is_decoded(thai_table: str, rest: httpx.Client,
                                                    wire: Wire) -> None:
    assert wait_until_served(rest, f"/{thai_table}").status_code == 200
    encoded = quote(thai_table)
    assert encoded.startswith("%E0%B8%")
    wire.send(get(f"/rest/v1/{encoded}?select=sign&order=id"))
    reply = wire.reply()
    assert reply.status == 200
    assert reply.json() == [{"sign": "ราศีเมษ"}, {"sign": "ราศีพฤษภ"}]
    wire.send(get(f"/rest/v1/{encoded.lower()}?select=id&id=eq.2"))
    assert wire.reply().json() == [{"id": 2}]


# -- connection lifetime on a dedicated server ------------------------------------------------


def gateway_settings(gw_database: str, **overrides: object) -> GatewaySettings:
    values: dict[str, object] = {"database_url": login_url(gw_database, "authenticator"),
                                 "jwt_secret": GW_SECRET, "pool_max": 2}
    values.update(overrides)
    return GatewaySettings.model_validate(values)


def test_idle_keep_alive_connections_are_closed_after_the_idle_timeout(
        gw_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway_server, "_IDLE_TIMEOUT", 0.3)
    with ServerThread(create_app(gateway_settings(gw_database)), name="idle-gateway") as server:
        url = server.url + "/rest/v1"
        silent, used = Wire(url), Wire(url)
        busy: Wire | None = None
        try:
            used.send(get("/rest/v1/items?select=id&id=eq.1"))
            assert used.reply().status == 200
            answered = time.monotonic()
            assert used.is_closed_by_server(within=3)
            assert time.monotonic() - answered >= 0.2
            # A connection that never sent anything is closed as well.
            assert silent.is_closed_by_server(within=3)
            # One that stalls halfway through a request is closed too.
            stalled = Wire(url)
            stalled.send(b"GET /rest/v1/items HTTP/1.1\r\nHost: x\r\n")
            assert stalled.is_closed_by_server(within=3)
            stalled.close()
            # One waiting for a response longer than the timeout is not idle.
            busy = Wire(url)
            busy.send(get("/rest/v1/rpc/sleepy?seconds=0.5"))
            assert busy.reply().json() == 1
        finally:
            silent.close()
            used.close()
            if busy is not None:
                busy.close()


def test_stop_finishes_the_request_in_flight_then_refuses_connections(gw_database: str) -> None:
    server = ServerThread(create_app(gateway_settings(gw_database)), name="stopping-gateway")
    server.start()
    url = server.url + "/rest/v1"
    busy, idle = Wire(url), Wire(url)
    try:
        idle.send(get("/rest/v1/items?select=id&id=eq.1"))
        assert idle.reply().status == 200
        body = b'{"seconds": 0.6}'
        busy.send(get("/rest/v1/rpc/sleepy", "Content-Type: application/json",
                      f"Content-Length: {len(body)}", method="POST") + body)
        with superuser(gw_database) as conn:  # wait until the call is running in the database
            deadline = time.monotonic() + 5
            while not conn.execute(
                    "select count(*) from pg_stat_activity where datname = current_database()"
                    " and state = 'active' and query like '%sleepy%' and pid <> pg_backend_pid()"
                    ).fetchone()[0]:  # type: ignore[index]
                assert time.monotonic() < deadline, "the slow call never started"
                time.sleep(0.02)
        stopping = threading.Thread(target=server.stop)
        stopping.start()
        assert idle.is_closed_by_server(within=3)  # idle connections are closed at once
        reply = busy.reply()
        assert (reply.status, reply.json()) == (200, 1)
        assert reply.header("connection") == "close"
        assert busy.is_closed_by_server()
        stopping.join(timeout=10)
        assert not stopping.is_alive()
    finally:
        busy.close()
        idle.close()
        server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_start_fails_promptly_with_the_cause_when_the_native_app_cannot_start(
        gw_database: str) -> None:
    dead = free_port()
    settings = gateway_settings(
        gw_database, database_url=f"postgresql://authenticator@127.0.0.1:{dead}/postgres")
    server = ServerThread(create_app(settings), name="doomed-gateway")
    began = time.monotonic()
    with pytest.raises(RuntimeError, match="did not start") as info:
        server.start(timeout=15)
    assert time.monotonic() - began < 5
    cause = info.value.__cause__
    assert cause is not None
    assert str(dead) in str(cause)
    # The listening socket is not left behind.
    assert port_is_free(server.port)

