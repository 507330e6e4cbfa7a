"""The local identity provider: id tokens that verify against its JWKS or its shared secret."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from devstack.identity_provider import IdentityProviderSettings, create_app
from devstack.serve import ServerThread

SECRET = "local-shared-secret-of-at-least-32-bytes"
PERSON = {"sub": "user-42", "email": "nok@example.com", "email_verified": True,
          "name": "นก", "picture": "https://example.com/nok.png"}


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    settings = IdentityProviderSettings(hs256_secret=SecretStr(SECRET))
    with ServerThread(create_app(settings), name="identity-provider") as server:
        yield server.url


def issue(base_url: str, body: dict, alg: str | None = None) -> httpx.Response:
    params = {"alg": alg} if alg else None
    return httpx.post(f"{base_url}/token", json=body, params=params)


def test_rs256_token_verifies_with_the_published_jwks(provider):
    token = issue(provider, PERSON).json()["id_token"]

    signing_key = jwt.PyJWKClient(f"{provider}/.well-known/jwks.json").get_signing_key_from_jwt(
        token)
    claims = jwt.decode(token, signing_key.key, algorithms=["RS256"], audience="mimivibe",
                        issuer=provider,
                        options={"require": ["iss", "aud", "sub", "exp", "iat", "nbf"]})

    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert signing_key.key_id == jwt.get_unverified_header(token)["kid"]
    assert {k: claims[k] for k in PERSON} == PERSON
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["nbf"] == claims["iat"]


def test_hs256_token_verifies_with_the_shared_secret(provider):
    token = issue(provider, PERSON, alg="HS256").json()["id_token"]

    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="mimivibe",
                        issuer=provider)

    assert claims["sub"] == "user-42"
    assert claims["email_verified"] is True
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-of-at-least-32-bytes!!", algorithms=["HS256"],
                   audience="mimivibe")


def test_unverified_email_is_stated_as_such(provider):
    token = issue(provider, {"sub": "user-7", "email": "x@example.com"}).json()["id_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["email_verified"] is False
    assert "name" not in claims and "picture" not in claims


def test_openid_configuration_names_issuer_jwks_and_algorithms(provider):
    config = httpx.get(f"{provider}/.well-known/openid-configuration").json()
    assert config["issuer"] == provider
    assert config["jwks_uri"] == f"{provider}/.well-known/jwks.json"
    assert config["token_endpoint"] == f"{provider}/token"
    assert config["id_token_signing_alg_values_supported"] == ["RS256", "HS256"]
    (key,) = httpx.get(config["jwks_uri"]).json()["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert "d" not in key  # the private exponent never leaves the server


def test_expired_token_on_request_is_rejected_by_verifiers(provider):
    token = issue(provider, {**PERSON, "expires_in": -120}).json()["id_token"]
    key = jwt.PyJWKClient(f"{provider}/.well-known/jwks.json").get_signing_key_from_jwt(token)
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, key.key, algorithms=["RS256"], audience="mimivibe")


def test_bad_token_requests_are_refused(provider):
    assert issue(provider, {"email": "x@example.com"}).status_code == 400
    assert issue(provider, {"sub": "u", "role": "admin"}).status_code == 400
    assert issue(provider, {"sub": "u"}, alg="none").status_code == 400


def test_configured_issuer_audience_and_key_are_used():
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    settings = IdentityProviderSettings(issuer="https://id.mimivibe.local", audience="app",
                                        hs256_secret=None, rsa_private_key_pem=SecretStr(pem))
    kids = []
    for _ in range(2):  # the same key across restarts keeps earlier tokens valid
        with ServerThread(create_app(settings)) as server:
            token = issue(server.url, PERSON).json()["id_token"]
            key = jwt.PyJWKClient(f"{server.url}/.well-known/jwks.json").get_signing_key_from_jwt(
                token)
            claims = jwt.decode(token, key.key, algorithms=["RS256"], audience="app",
                                issuer="https://id.mimivibe.local")
            kids.append(key.key_id)
            assert issue(server.url, PERSON, alg="HS256").status_code == 400
    assert claims["aud"] == "app"
    assert kids[0] == kids[1]
