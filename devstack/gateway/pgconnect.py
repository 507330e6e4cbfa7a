"""Opening a protocol connection: libpq's connection parameters (URL or key=value, with the PG*
environment fallbacks for host, port, user, password, database and sslmode), TLS as `sslmode`
asks (disable, allow, prefer, require, verify-ca, verify-full), password authentication
(cleartext, MD5, SCRAM-SHA-256) and the startup exchange.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import ssl
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from devstack.gateway.pgauth import ScramSha256, md5_password
from devstack.gateway.pgwire import (
    PgConnection,
    PgError,
    WireProtocol,
    connection_error,
    error_fields,
)

_SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")


def _settings(conninfo: str) -> dict[str, str]:
    given = {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    env = os.environ
    user = given.get("user") or env.get("PGUSER") or getpass.getuser()
    settings = {
        "host": given.get("host") or given.get("hostaddr") or env.get("PGHOST") or "localhost",
        "port": given.get("port") or env.get("PGPORT") or "5432",
        "user": user,
        "dbname": given.get("dbname") or env.get("PGDATABASE") or user,
        "password": given.get("password") or env.get("PGPASSWORD") or "",
        "sslmode": given.get("sslmode") or env.get("PGSSLMODE") or "prefer",
    }
    for key in ("sslrootcert", "application_name", "options"):
        if given.get(key):
            settings[key] = given[key]
    if "," in settings["host"] or "," in settings["port"]:
        raise ValueError("the gateway connects to a single host")
    return settings


def _ssl_context(settings: dict[str, str]) -> ssl.SSLContext:
    mode = settings["sslmode"]
    if mode in ("verify-ca", "verify-full"):
        context = ssl.create_default_context(cafile=settings.get("sslrootcert"))
        context.check_hostname = mode == "verify-full"
        return context
    context = ssl.create_default_context()  # allow, prefer, require: encrypted, not verified
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _next(protocol: WireProtocol) -> tuple[int, bytes]:
    assert protocol.inbox is not None
    while not protocol.inbox:
        if protocol.lost is not None:
            raise connection_error(f"the server closed the connection: {protocol.lost}")
        protocol.waiter = asyncio.get_running_loop().create_future()
        await protocol.waiter
    return protocol.inbox.pop(0)


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + (len(body) + 4).to_bytes(4, "big") + body


async def _negotiate_tls(transport: asyncio.Transport, protocol: WireProtocol,
                         settings: dict[str, str]) -> asyncio.Transport:
    mode = settings["sslmode"]
    if mode in ("disable", "allow") or settings["host"].startswith("/"):
        return transport
    protocol.raw = True
    transport.write(_SSL_REQUEST)
    while not protocol.buffer and protocol.lost is None:
        protocol.waiter = asyncio.get_running_loop().create_future()
        await protocol.waiter
    protocol.raw = False
    answer = bytes(protocol.buffer[:1])
    del protocol.buffer[:1]
    if answer == b"S":
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(transport, protocol, _ssl_context(settings),
                                       server_hostname=settings["host"])
        except ssl.SSLError as exc:
            raise connection_error(f"TLS negotiation failed: {exc}") from exc
        if tls is None:
            raise connection_error("TLS negotiation failed")
        return tls
    if answer == b"N" and mode == "prefer":
        return transport
    raise connection_error(f"the server does not support TLS (sslmode={mode})")


async def _authenticate(transport: asyncio.Transport, protocol: WireProtocol,
                        settings: dict[str, str]) -> None:
    password = settings["password"]
    scram: ScramSha256 | None = None
    while True:
        kind, body = await _next(protocol)
        if kind == 69:
            raise PgError(error_fields(body))
        if kind != 82:  # Authentication*
            raise connection_error(f"unexpected message {chr(kind)!r} during authentication")
        code = int.from_bytes(body[:4], "big")
        if code == 0:
            return
        if code in (3, 5, 10) and not password:
            raise connection_error(f"the server asks for a password for user {settings['user']}")
        if code == 3:
            transport.write(_message(b"p", password.encode() + b"\x00"))
        elif code == 5:
            transport.write(_message(b"p", md5_password(settings["user"], password, body[4:8])
                                     + b"\x00"))
        elif code == 10:
            mechanisms = body[4:].split(b"\x00")
            if ScramSha256.mechanism.encode() not in mechanisms:
                raise connection_error(f"no supported SASL mechanism in {mechanisms!r}")
            scram = ScramSha256(password)
            first = scram.client_first()
            transport.write(_message(b"p", ScramSha256.mechanism.encode() + b"\x00"
                                     + len(first).to_bytes(4, "big") + first))
        elif code == 11 and scram is not None:
            transport.write(_message(b"p", scram.client_final(body[4:])))
        elif code == 12 and scram is not None:
            scram.verify(body[4:])
        else:
            raise connection_error(f"unsupported authentication request {code}")


async def connect(conninfo: str, *, timeout: float = 10.0) -> PgConnection:
    settings = _settings(conninfo)
    async with asyncio.timeout(timeout):
        return await _connect(settings)


async def _connect(settings: dict[str, str]) -> PgConnection:
    loop = asyncio.get_running_loop()
    host, port = settings["host"], int(settings["port"])
    try:
        if host.startswith("/"):
            transport, protocol = await loop.create_unix_connection(
                WireProtocol, f"{host}/.s.PGSQL.{port}")
        else:
            transport, protocol = await loop.create_connection(WireProtocol, host, port)
    except OSError as exc:
        raise connection_error(f"connection to {host} port {port} failed: {exc}") from exc
    try:
        transport = await _negotiate_tls(transport, protocol, settings)
        params: dict[str, Any] = {"user": settings["user"], "database": settings["dbname"],
                                  "client_encoding": "UTF8"}
        for key in ("application_name", "options"):
            if key in settings:
                params[key] = settings[key]
        body = (196608).to_bytes(4, "big") + b"".join(
            k.encode() + b"\x00" + str(v).encode() + b"\x00" for k, v in params.items()) + b"\x00"
        transport.write((len(body) + 4).to_bytes(4, "big") + body)
        await _authenticate(transport, protocol, settings)
        while True:  # ParameterStatus and BackendKeyData, then ReadyForQuery
            kind, body = await _next(protocol)
            if kind == 69:
                raise PgError(error_fields(body))
            if kind == 90:
                break
    except BaseException:
        transport.close()
        raise
    protocol.inbox = None
    return PgConnection(transport, protocol)
