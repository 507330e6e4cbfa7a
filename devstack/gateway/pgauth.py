"""Password authentication of the PostgreSQL protocol: cleartext, MD5 and SCRAM-SHA-256 (RFC 5802 /
RFC 7677, without channel binding, as libpq does over a plain connection)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


class AuthError(Exception):
    """The server's SASL exchange was malformed or its signature did not verify."""


def md5_password(user: str, password: str, salt: bytes) -> bytes:
    """The protocol's MD5 challenge answer (the server's choice of method, not ours)."""
    inner = hashlib.md5((password + user).encode(), usedforsecurity=False).hexdigest()
    return b"md5" + hashlib.md5(inner.encode() + salt, usedforsecurity=False).hexdigest().encode()


def _attributes(message: bytes) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for item in message.decode().split(","):
        key, eq, value = item.partition("=")
        if not eq:
            raise AuthError(f"malformed SCRAM message: {message!r}")
        attrs[key] = value
    return attrs


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


class ScramSha256:
    """One client side of a SCRAM-SHA-256 exchange.

    PostgreSQL takes the user from the startup message, so libpq sends the name empty; the
    default here does the same."""

    mechanism = "SCRAM-SHA-256"

    def __init__(self, password: str, *, user: str = "", nonce: str | None = None) -> None:
        self._password = password.encode()
        self._nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode()
        self._first_bare = f"n={user},r={self._nonce}"
        self._auth_message = b""
        self._server_key = b""

    def client_first(self) -> bytes:
        return ("n,," + self._first_bare).encode()

    def client_final(self, server_first: bytes) -> bytes:
        attrs = _attributes(server_first)
        nonce = attrs.get("r", "")
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise AuthError("the server's SCRAM nonce does not extend ours")
        try:
            salt = base64.b64decode(attrs["s"], validate=True)
            iterations = int(attrs["i"])
        except (KeyError, ValueError) as exc:
            raise AuthError("the server's SCRAM salt or iteration count is malformed") from exc
        salted = hashlib.pbkdf2_hmac("sha256", self._password, salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        without_proof = f"c=biws,r={nonce}"
        self._auth_message = b",".join(
            (self._first_bare.encode(), server_first, without_proof.encode()))
        signature = _hmac(hashlib.sha256(client_key).digest(), self._auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._server_key = _hmac(salted, b"Server Key")
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        attrs = _attributes(server_final)
        if "e" in attrs:
            raise AuthError(f"SCRAM authentication failed: {attrs['e']}")
        expected = _hmac(self._server_key, self._auth_message)
        try:
            given = base64.b64decode(attrs.get("v", ""), validate=True)
        except ValueError as exc:
            raise AuthError("the server's SCRAM signature is malformed") from exc
        if not hmac.compare_digest(given, expected):
            raise AuthError("the server's SCRAM signature does not verify")
