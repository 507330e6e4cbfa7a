"""The gateway bounds what a request may send: a body over `max_body_bytes` answers 413, a
target over `max_url_bytes` answers 414 (JSON error bodies), and the connection is closed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.gateway import GatewaySettings
from tests.devstack.test_gateway_server import Wire, get


@pytest.fixture()
def wire(gateway_url: str) -> Iterator[Wire]:
    conn = Wire(gateway_url)
    yield conn
    conn.close()


LIMITS = GatewaySettings(database_url="postgresql://unused", jwt_secret="x" * 32)


def test_a_body_over_the_limit_is_413_and_closes_the_connection(wire: Wire) -> None:
    size = LIMITS.max_body_bytes + 1
    body = b"[" + b" " * (size - 2) + b"]"
    wire.send(f"POST /rest/v1/tallies HTTP/1.1\r\nHost: gateway\r\nContent-Type: "
              f"application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    reply = wire.reply()
    assert reply.status == 413
    assert reply.json() == {"code": "GW413", "message": "Payload Too Large", "hint": None,
                            "details": f"The request body is larger than "
                                       f"{LIMITS.max_body_bytes} bytes."}
    assert reply.header("connection") == "close"
    assert wire.is_closed_by_server()


def test_a_chunked_body_growing_over_the_limit_is_413(wire: Wire) -> None:
    chunk = b" " * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk)
                      for _ in range(LIMITS.max_body_bytes // len(chunk) + 1))
    wire.send(b"POST /rest/v1/tallies HTTP/1.1\r\nHost: gateway\r\nContent-Type: "
              b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
    assert wire.reply().status == 413


def test_a_target_over_the_limit_is_414_and_one_under_it_is_served(wire: Wire) -> None:
    ids = ",".join(str(i) for i in range(1, 4000))  # about 19 KB
    wire.send(get(f"/rest/v1/items?select=id&id=in.({ids})"))
    reply = wire.reply()
    assert (reply.status, reply.json()["code"]) == (414, "GW414")  # type: ignore[index]
    assert wire.is_closed_by_server()
    again = Wire(wire_url(wire))
    try:
        short = ",".join(str(i) for i in range(1, 2500))  # about 12 KB
        again.send(get(f"/rest/v1/items?select=id&id=in.({short})&order=id"))
        served = again.reply()
        assert served.status == 200
        assert served.json() == [{"id": i} for i in range(1, 6)]
    finally:
        again.close()


def wire_url(wire: Wire) -> str:
    host, port = wire.sock.getpeername()[:2]
    return f"http://{host}:{port}"


def test_the_python_client_gets_413_for_a_20_mb_body(gateway_url: str) -> None:
    payload = b'[{"batch": "' + b"x" * (20 * 1024 * 1024) + b'"}]'
    r = httpx.post(gateway_url + "/tallies", content=payload,
                   headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413
    assert r.json()["code"] == "GW413"
