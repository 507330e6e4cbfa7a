"""The access token: minted by `session`, accepted by every user function and by PostgREST."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from shared.access_tokens import authenticate, mint_access_token, verify_access_token
from shared.errors import Unauthorized
from shared.http import FunctionUrlRequest
from tests.identity.conftest import JWT_SECRET, make_settings
from tests.identity.tokens import forge, tamper


def test_minted_token_is_a_supabase_user_jwt():
    user_id = uuid.uuid4()
    before = int(time.time())

    minted = mint_access_token(user_id, secret=JWT_SECRET, ttl_seconds=3600)

    claims = jwt.decode(minted.token, JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    assert jwt.get_unverified_header(minted.token)["alg"] == "HS256"
    assert claims["sub"] == str(user_id)
    assert claims["role"] == "authenticated"
    assert claims["aud"] == "authenticated"
    assert before <= claims["iat"] <= before + 5
    assert claims["exp"] == claims["iat"] + 3600 == minted.expires_at


def test_verified_token_names_the_user():
    user_id = uuid.uuid4()
    minted = mint_access_token(user_id, secret=JWT_SECRET)
    user = verify_access_token(minted.token, secret=JWT_SECRET)
    assert user.user_id == user_id
    assert user.access_token == minted.token
    assert user.expires_at == minted.expires_at


def _rejected(token: str) -> None:
    with pytest.raises(Unauthorized):
        verify_access_token(token, secret=JWT_SECRET, leeway_seconds=5)


def test_expired_token_is_unauthorized():
    _rejected(mint_access_token(uuid.uuid4(), secret=JWT_SECRET, ttl_seconds=60,
                                now=int(time.time()) - 600).token)


def test_token_signed_with_another_secret_is_unauthorized():
    _rejected(mint_access_token(uuid.uuid4(), secret="x" * 40).token)


def test_tampered_subject_is_unauthorized():
    token = mint_access_token(uuid.uuid4(), secret=JWT_SECRET).token
    _rejected(tamper(token, sub=str(uuid.uuid4())))


def test_anon_and_service_role_keys_are_not_user_tokens():
    now = int(time.time())
    for role in ("anon", "service_role"):
        key = jwt.encode({"role": role, "iss": "supabase", "iat": now, "exp": now + 600,
                          "aud": "authenticated", "sub": str(uuid.uuid4())},
                         JWT_SECRET, algorithm="HS256")
        _rejected(key)


def test_wrong_audience_alg_none_and_non_uuid_subject_are_unauthorized():
    now = int(time.time())
    base = {"sub": str(uuid.uuid4()), "role": "authenticated", "iat": now, "exp": now + 600}
    _rejected(jwt.encode({**base, "aud": "other"}, JWT_SECRET, algorithm="HS256"))
    _rejected(forge({"alg": "none", "typ": "JWT"}, {**base, "aud": "authenticated"}))
    _rejected(jwt.encode({**base, "aud": "authenticated", "sub": "not-a-uuid"}, JWT_SECRET,
                         algorithm="HS256"))


def _request(headers: dict[str, str]) -> FunctionUrlRequest:
    return FunctionUrlRequest.from_event(
        {"requestContext": {"http": {"method": "POST"}, "requestId": "r1"}, "headers": headers}
    )


def test_authenticate_reads_the_bearer_header(monkeypatch):
    # No database here: the account is taken as not erased (tests/account covers erased ones).
    monkeypatch.setattr("shared.access_tokens._erased_check", lambda user: False)
    settings = make_settings()
    user_id = uuid.uuid4()
    token = mint_access_token(user_id, secret=JWT_SECRET).token
    assert authenticate(_request({"Authorization": f"Bearer {token}"}), settings).user_id == user_id
    for headers in ({}, {"Authorization": token}, {"Authorization": "Bearer "},
                    {"Authorization": "Basic abc"}):
        with pytest.raises(Unauthorized):
            authenticate(_request(headers), settings)
