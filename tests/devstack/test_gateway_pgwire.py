"""The gateway's PostgreSQL protocol client: password methods, TLS modes, replies and failures.

Password logins run against a dedicated cluster whose pg_hba.conf asks each role for its own
method. The embedded PostgreSQL is built without OpenSSL (`ssl = on` stops it: "SSL is not
supported by this build"), so the TLS tests put a small frontend before that cluster which does
what a server with `ssl = on` does before the startup packet: it answers the SSLRequest with S,
takes the TLS handshake with a self-signed certificate and then relays the bytes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import ipaddress
import os
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from psycopg.conninfo import make_conninfo

from devstack.gateway.pgauth import AuthError, ScramSha256
from devstack.gateway.pgconnect import connect
from devstack.gateway.pgwire import PgError
from devstack.ports import free_port
from devstack.postgres import PostgresCluster

PASSWORDS = {"wire_scram": "scram-secret", "wire_md5": "md5-secret", "wire_plain": "plain-secret"}
METHODS = {"wire_scram": "scram-sha-256", "wire_md5": "md5", "wire_plain": "password"}
SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")


@dataclass
class AuthCluster:
    port: int
    root_cert: Path
    server_tls: ssl.SSLContext

    def conninfo(self, user: str, password: str | None = None, *, port: int | None = None,
                 host: str = "127.0.0.1", sslmode: str = "disable", **extra: str) -> str:
        params = {"host": host, "port": str(port or self.port), "dbname": "postgres",
                  "user": user, "sslmode": sslmode, **extra}
        if password is not None:
            params["password"] = password
        return make_conninfo("", **params)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for IP 127.0.0.1 only (no DNS name), signing itself, and its key (0600)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pgwire test server")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
            ipaddress.IPv4Address("127.0.0.1"))]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def auth_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthCluster]:
    root = tmp_path_factory.mktemp("pgwire")
    cluster = PostgresCluster(root / "data")
    cluster.init()
    # The file stays the server user's (it is rewritten, not replaced).
    (cluster.data_dir / "pg_hba.conf").write_text(
        "local all all trust\n"
        + "".join(f"host all {role} 127.0.0.1/32 {method}\n" for role, method in METHODS.items())
        + "host all all 127.0.0.1/32 trust\n")
    cert, key = _self_signed(root)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    try:
        cluster.start()
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            conn.execute("create role wire_scram login password 'scram-secret'")
            conn.execute("create role wire_plain login password 'plain-secret'")
            conn.execute("set password_encryption = 'md5'")
            conn.execute("create role wire_md5 login password 'md5-secret'")
            stored: dict[str, str] = {name: secret for name, secret in conn.execute(
                "select rolname, rolpassword from pg_authid where rolname like 'wire\\_%'")}
        # With a SCRAM verifier stored, pg_hba's md5 would quietly run SCRAM instead.
        assert stored["wire_md5"].startswith("md5")
        assert stored["wire_scram"].startswith("SCRAM-SHA-256$")
        yield AuthCluster(cluster.port, cert, server_tls)
    finally:
        cluster.destroy()


@dataclass
class Frontend:
    port: int = 0
    sessions: list[str] = field(default_factory=list)  # "tls" or "plain", one per connection


async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def tls_frontend(upstream_port: int, context: ssl.SSLContext) -> AsyncIterator[Frontend]:
    """A listener that speaks for a server with `ssl = on`, relaying to `upstream_port`."""
    frontend = Frontend()
    handlers: set[asyncio.Task[object]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            first = await reader.readexactly(8)
            if first == SSL_REQUEST:
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(context)
                frontend.sessions.append("tls")
                first = b""
            else:
                frontend.sessions.append("plain")
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
            up_writer.write(first)
            await asyncio.gather(_relay(reader, up_writer), _relay(up_reader, writer),
                                 return_exceptions=True)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client gave up (for example it refused the certificate)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    frontend.port = server.sockets[0].getsockname()[1]
    try:
        yield frontend
    finally:
        server.close()
        if handlers:  # each ends once its client has hung up
            await asyncio.wait(handlers, timeout=2)
        for task in handlers:
            task.cancel()
        await server.wait_closed()


async def _fetch(conninfo: str, text: str) -> list[list[bytes | None]]:
    conn = await connect(conninfo, timeout=5)
    try:
        return (await conn.query(text))[0]
    finally:
        conn.close()


# Password methods


@pytest.mark.parametrize("role", list(METHODS))
def test_password_login_uses_the_method_pg_hba_asks_for(auth_cluster: AuthCluster, role: str
                                                        ) -> None:
    rows = asyncio.run(_fetch(auth_cluster.conninfo(role, PASSWORDS[role]),
                              "select current_user, system_user"))
    assert rows == [[role.encode(), f"{METHODS[role]}:{role}".encode()]]


@pytest.mark.parametrize("role", list(METHODS))
def test_wrong_password_is_rejected_with_28P01(auth_cluster: AuthCluster, role: str) -> None:
    with pytest.raises(PgError) as caught:
        asyncio.run(_fetch(auth_cluster.conninfo(role, "not-" + PASSWORDS[role]), "select 1"))
    assert caught.value.sqlstate == "28P01"
    assert role in caught.value.message


@pytest.mark.parametrize("role", list(METHODS))
def test_missing_password_is_a_connection_error(auth_cluster: AuthCluster, role: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(PgError) as caught:
        asyncio.run(_fetch(auth_cluster.conninfo(role), "select 1"))
    assert caught.value.sqlstate == ""
    assert caught.value.message == f"the server asks for a password for user {role}"


def test_password_falls_back_to_pgpassword(auth_cluster: AuthCluster,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORDS["wire_scram"])
    rows = asyncio.run(_fetch(auth_cluster.conninfo("wire_scram"), "select current_user"))
    assert rows == [[b"wire_scram"]]


# SCRAM-SHA-256 against RFC 7677's example

RFC_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_FIRST = (b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
RFC_CLIENT_FINAL = (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def rfc_client() -> ScramSha256:
    return ScramSha256("pencil", user="user", nonce=RFC_NONCE)


def test_scram_exchange_matches_rfc_7677() -> None:
    scram = rfc_client()
    assert scram.client_first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert scram.client_final(RFC_SERVER_FIRST) == RFC_CLIENT_FINAL
    scram.verify(RFC_SERVER_FINAL)  # a genuine server signature passes


def test_scram_rejects_a_forged_server_signature() -> None:
    scram = rfc_client()
    scram.client_final(RFC_SERVER_FIRST)
    forged = bytearray(base64.b64decode(RFC_SERVER_FINAL[2:]))
    forged[0] ^= 1
    with pytest.raises(AuthError, match="does not verify"):
        scram.verify(b"v=" + base64.b64encode(bytes(forged)))


def test_scram_reports_the_servers_error_attribute() -> None:
    scram = rfc_client()
    scram.client_final(RFC_SERVER_FIRST)
    with pytest.raises(AuthError, match="invalid-proof"):
        scram.verify(b"e=invalid-proof")


@pytest.mark.parametrize("server_nonce", ["someoneElsesNonce%hvYDpWUa2RaT", RFC_NONCE],
                         ids=["foreign", "not-extended"])
def test_scram_rejects_a_server_nonce_that_does_not_extend_ours(server_nonce: str) -> None:
    server_first = f"r={server_nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".encode()
    with pytest.raises(AuthError, match="nonce"):
        rfc_client().client_final(server_first)


# TLS (sslmode)


def test_sslmode_require_encrypts_and_logs_in(auth_cluster: AuthCluster) -> None:
    async def scenario() -> tuple[list[str], list[list[bytes | None]]]:
        async with tls_frontend(auth_cluster.port, auth_cluster.server_tls) as frontend:
            conninfo = auth_cluster.conninfo("wire_scram", PASSWORDS["wire_scram"],
                                             port=frontend.port, sslmode="require")
            return frontend.sessions, await _fetch(conninfo, "select current_user")

    sessions, rows = asyncio.run(scenario())
    assert sessions == ["tls"]
    assert rows == [[b"wire_scram"]]


def test_large_values_arrive_whole_over_tls(auth_cluster: AuthCluster) -> None:
    async def scenario() -> list[list[bytes | None]]:
        async with tls_frontend(auth_cluster.port, auth_cluster.server_tls) as frontend:
            conninfo = auth_cluster.conninfo("postgres", port=frontend.port, sslmode="require")
            return await _fetch(conninfo, "select repeat('x', 2000000), 'after'")

    rows = asyncio.run(scenario())
    assert rows == [[b"x" * 2_000_000, b"after"]]


@pytest.mark.parametrize("sslmode", ["disable", "allow"])
def test_sslmodes_without_tls_send_no_ssl_request(auth_cluster: AuthCluster, sslmode: str
                                                  ) -> None:
    async def scenario() -> tuple[list[str], list[list[bytes | None]]]:
        async with tls_frontend(auth_cluster.port, auth_cluster.server_tls) as frontend:
            conninfo = auth_cluster.conninfo("postgres", port=frontend.port, sslmode=sslmode)
            return frontend.sessions, await _fetch(conninfo, "select 1")

    assert asyncio.run(scenario()) == (["plain"], [[b"1"]])


def test_sslmode_prefer_uses_tls_when_offered(auth_cluster: AuthCluster) -> None:
    async def scenario() -> list[str]:
        async with tls_frontend(auth_cluster.port, auth_cluster.server_tls) as frontend:
            conninfo = auth_cluster.conninfo("postgres", port=frontend.port, sslmode="prefer")
            assert await _fetch(conninfo, "select 1") == [[b"1"]]
            return frontend.sessions

    assert asyncio.run(scenario()) == ["tls"]


def test_sslmode_require_fails_against_a_server_without_tls(pg_server: str) -> None:
    with pytest.raises(PgError) as caught:
        asyncio.run(_fetch(make_conninfo(pg_server, sslmode="require"), "select 1"))
    assert caught.value.sqlstate == ""
    assert caught.value.message == "the server does not support TLS (sslmode=require)"


def test_sslmode_prefer_falls_back_to_plain_without_tls(pg_server: str) -> None:
    rows = asyncio.run(_fetch(make_conninfo(pg_server, sslmode="prefer"),
                              "select ssl from pg_stat_ssl where pid = pg_backend_pid()"))
    assert rows == [[b"f"]]


def test_verify_full_accepts_the_certificate_for_its_ip(auth_cluster: AuthCluster) -> None:
    async def scenario() -> list[str]:
        async with tls_frontend(auth_cluster.port, auth_cluster.server_tls) as frontend:
            conninfo = auth_cluster.conninfo("postgres", port=frontend.port,
                                             sslmode="verify-full",
                                             sslrootcert=str(auth_cluster.root_cert))
            assert await _fetch(conninfo, "select 1") == [[b"1"]]
            return frontend.sessions

    assert asyncio.run(scenario()) == ["tls"]


@pytest.mark.parametrize(("sslmode", "host", "with_root", "reason"), [
    ("verify-full", "127.0.0.1", False, "self-signed certificate"),
    ("verify-ca", "127.0.0.1", False, "self-signed certificate"),
    ("verify-full", "localhost", True, "Hostname mismatch"),
])
def test_verified_modes_refuse_an_untrusted_or_misnamed_server(
        auth_cluster: AuthCluster, sslmode: str, host: str, with_root: bool, reason: str) -> None:
    async def scenario() -> None:
        async with tls_frontend(auth_cluster.port, auth_cluster.server_tls) as frontend:
            extra = {"sslrootcert": str(auth_cluster.root_cert)} if with_root else {}
            conninfo = auth_cluster.conninfo("postgres", port=frontend.port, host=host,
                                             sslmode=sslmode, **extra)
            await _fetch(conninfo, "select 1")

    with pytest.raises(PgError, match=reason) as raised:
        asyncio.run(scenario())
    assert raised.value.sqlstate == ""
    assert isinstance(raised.value.__cause__, ssl.SSLCertVerificationError)


def test_verify_ca_does_not_check_the_host_name(auth_cluster: AuthCluster) -> None:
    async def scenario() -> list[list[bytes | None]]:
        async with tls_frontend(auth_cluster.port, auth_cluster.server_tls) as frontend:
            # The certificate names 127.0.0.1 only, not localhost.
            conninfo = auth_cluster.conninfo("postgres", port=frontend.port, host="localhost",
                                             sslmode="verify-ca",
                                             sslrootcert=str(auth_cluster.root_cert))
            return await _fetch(conninfo, "select 1")

    assert asyncio.run(scenario()) == [[b"1"]]


# Replies, errors and lost connections (on the shared server)


def test_each_statement_of_a_query_has_its_own_rows(pg_server: str) -> None:
    async def scenario() -> list[list[list[bytes | None]]]:
        conn = await connect(pg_server, timeout=5)
        try:
            return await conn.query(
                "select 1; select 2, null::text; select 'ความรัก', length('ความรัก');"
                " select 1 where false; select g from generate_series(1, 3) g")
        finally:
            conn.close()

    assert asyncio.run(scenario()) == [
        [[b"1"]],
        [[b"2", None]],
        [["ความรัก".encode(), b"7"]],
        [],
        [[b"1"], [b"2"], [b"3"]],
    ]


def test_a_large_value_arrives_whole_and_the_next_reply_is_intact(pg_server: str) -> None:
    async def scenario() -> tuple[list[list[bytes | None]], list[list[bytes | None]]]:
        conn = await connect(pg_server, timeout=5)
        try:
            big = (await conn.query("select repeat('x', 2000000), 'ไพ่' || repeat('ก', 100000)"))
            return big[0], (await conn.query("select 'next'"))[0]
        finally:
            conn.close()

    big, after = asyncio.run(scenario())
    assert big == [[b"x" * 2_000_000, ("ไพ่" + "ก" * 100_000).encode()]]
    assert after == [[b"next"]]


def test_an_error_carries_its_fields_and_the_connection_stays_usable(pg_server: str) -> None:
    async def scenario() -> tuple[PgError, bytes, list[list[bytes | None]]]:
        conn = await connect(pg_server, timeout=5)
        try:
            try:
                await conn.query(
                    "select 1; do $$ begin raise exception using errcode = 'P0001',"
                    " message = 'm', detail = 'd', hint = 'h'; end $$; select 2")
            except PgError as exc:
                error = exc
            else:
                raise AssertionError("the DO block should have failed")
            assert not conn.broken
            return error, conn.tx_status, (await conn.query("select 3"))[0]
        finally:
            conn.close()

    error, status, rows = asyncio.run(scenario())
    assert (error.sqlstate, error.message, error.detail, error.hint) == ("P0001", "m", "d", "h")
    assert status == b"I"
    assert rows == [[b"3"]]


def test_an_error_in_a_transaction_block_leaves_it_failed_until_rollback(pg_server: str
                                                                         ) -> None:
    async def scenario() -> list[object]:
        conn = await connect(pg_server, timeout=5)
        seen: list[object] = [conn.tx_status]
        try:
            await conn.query("begin")
            seen.append(conn.tx_status)
            for text in ("select 1/0", "select 1"):
                try:
                    await conn.query(text)
                except PgError as exc:
                    seen += [exc.sqlstate, conn.tx_status]
            await conn.query("rollback")
            seen.append(conn.tx_status)
            seen.append((await conn.query("select 1"))[0])
            return seen
        finally:
            conn.close()

    assert asyncio.run(scenario()) == [b"I", b"T", "22012", b"E", "25P02", b"E", b"I", [[b"1"]]]


def test_a_terminated_backend_breaks_the_connection(pg_server: str) -> None:
    async def scenario() -> PgError:
        victim = await connect(pg_server, timeout=5)
        killer = await connect(pg_server, timeout=5)
        try:
            pid = (await victim.query("select pg_backend_pid()"))[0][0][0]
            assert pid is not None
            killed = await killer.query(f"select pg_terminate_backend({pid.decode()})")
            assert killed == [[[b"t"]]]
            async with asyncio.timeout(5):
                while not victim.broken:
                    await asyncio.sleep(0.01)
            with pytest.raises(PgError) as caught:
                await victim.query("select 1")
            assert victim.broken
            return caught.value
        finally:
            victim.close()
            killer.close()

    error = asyncio.run(scenario())
    assert error.sqlstate == ""
    assert "lost" in error.message


def test_connecting_to_a_closed_port_is_a_connection_error() -> None:
    port = free_port()
    with pytest.raises(PgError) as caught:
        asyncio.run(connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", timeout=5))
    assert caught.value.sqlstate == ""
    assert f"connection to 127.0.0.1 port {port} failed" in caught.value.message


def test_an_unknown_database_is_a_server_error(pg_server: str) -> None:
    with pytest.raises(PgError) as caught:
        asyncio.run(connect(make_conninfo(pg_server, dbname="no_such_database_here"), timeout=5))
    assert caught.value.sqlstate == "3D000"


def test_a_server_that_never_answers_times_out_and_is_hung_up_on() -> None:
    async def scenario() -> tuple[BaseException, bytes]:
        received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.set_result(await reader.read())  # everything, until the client hangs up
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            try:
                await connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", timeout=0.2)
            except BaseException as exc:
                error = exc
            else:
                raise AssertionError("connect should have timed out")
            return error, await asyncio.wait_for(received, 2)
        finally:
            server.close()
            await server.wait_closed()

    error, received = asyncio.run(scenario())
    assert isinstance(error, TimeoutError)
    assert received == SSL_REQUEST  # sslmode=prefer asked first, then waited for the answer
