"""POST /session through the function URL, the REST gateway and Redis, with real tokens."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import psycopg
import pytest

from tests.identity.stack import JWT_SECRET, RATE_LIMIT, Stack
from tests.identity.tokens import SigningKey, forge, tamper

PROVIDERS = ["clerk", "auth0", "firebase", "custom"]
USER_FIELDS = {"id", "email", "name", "picture_url", "star_balance", "coin_balance",
               "invite_code", "tier", "total_invites", "invited_by", "created_at"}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert body["request_id"]
    return body


@pytest.mark.parametrize("provider", PROVIDERS)
def test_valid_provider_token_gets_a_usable_access_token(stack: Stack, provider):
    email = f"{provider}.{uuid.uuid4().hex[:8]}@example.test"
    token = stack.providers[provider].token(
        uuid.uuid4().hex, email=email, email_verified=True, name="Dao"
    )

    response = stack.session(token)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert set(body["user"]) >= USER_FIELDS
    assert body["user"]["email"] == email and body["user"]["name"] == "Dao"
    claims = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"],
                        audience="authenticated")
    assert claims["sub"] == body["user"]["id"] and claims["role"] == "authenticated"
    assert claims["exp"] == body["expires_at"]
    assert 3500 <= body["expires_at"] - time.time() <= 3700

    rows = stack.rest("GET", "users?select=id,email,star_balance", body["access_token"])
    assert rows.status_code == 200
    assert rows.json() == [{"id": body["user"]["id"], "email": email, "star_balance": 0}]


def test_second_sign_in_returns_the_same_user(stack: Stack):
    subject = uuid.uuid4().hex
    first = stack.sign_in("auth0", subject)
    second = stack.sign_in("auth0", subject)
    assert second["user"]["id"] == first["user"]["id"]
    assert second["user"]["invite_code"] == first["user"]["invite_code"]


def test_body_profile_is_used_when_the_token_has_none(stack: Stack):
    token = stack.providers["clerk"].token(uuid.uuid4().hex)
    response = stack.session(token, {"name": "มิมิ", "picture_url": "https://img.test/m.png"})
    assert response.status_code == 200, response.text
    assert response.json()["user"]["name"] == "มิมิ"
    assert response.json()["user"]["picture_url"] == "https://img.test/m.png"


def _invalid_tokens(stack: Stack) -> dict[str, str]:
    auth0 = stack.providers["auth0"]
    firebase = stack.providers["firebase"]
    now = int(time.time())
    subject = uuid.uuid4().hex
    assert auth0.key is not None
    return {
        "expired": auth0.token(subject, iat=now - 3600, exp=now - 600),
        "not_yet_valid": auth0.token(subject, nbf=now + 600),
        "wrong_audience": auth0.token(subject, aud="https://other.test"),
        "unknown_issuer": auth0.token(subject, iss="https://evil.test/"),
        "other_firebase_project": firebase.token(
            subject, iss="https://securetoken.google.com/other", aud="other"
        ),
        "bad_signature": SigningKey.rsa(kid=auth0.key.kid).sign(
            {"iss": auth0.issuer, "aud": auth0.audience, "sub": subject, "iat": now,
             "exp": now + 600}
        ),
        "alg_none": forge({"alg": "none", "kid": auth0.key.kid},
                          {"iss": auth0.issuer, "aud": auth0.audience, "sub": subject,
                           "iat": now, "exp": now + 600}),
        "hs256_with_public_key": forge(
            {"alg": "HS256", "kid": auth0.key.kid},
            {"iss": auth0.issuer, "aud": auth0.audience, "sub": subject, "iat": now,
             "exp": now + 600},
            hmac_key=auth0.key.public_pem(),
        ),
        "unknown_kid": auth0.key.sign(
            {"iss": auth0.issuer, "aud": auth0.audience, "sub": subject, "iat": now,
             "exp": now + 600}, kid="rotated-away"),
        "tampered": tamper(auth0.token(subject), sub="someone-else"),
        "access_token_as_provider_token": jwt.encode(
            {"sub": str(uuid.uuid4()), "role": "authenticated", "aud": "authenticated",
             "iat": now, "exp": now + 600}, JWT_SECRET, algorithm="HS256"),
        "garbage": "abc.def.ghi",
    }


@pytest.mark.parametrize("kind", [
    "expired", "not_yet_valid", "wrong_audience", "unknown_issuer", "other_firebase_project",
    "bad_signature", "alg_none", "hs256_with_public_key", "unknown_kid", "tampered",
    "access_token_as_provider_token", "garbage",
])
def test_invalid_provider_token_is_401(stack: Stack, kind):
    response = stack.session(_invalid_tokens(stack)[kind])
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_missing_token_is_401(stack: Stack):
    assert_error(stack.session(None), 401, "unauthorized")


def test_unknown_body_field_is_422_and_get_is_405(stack: Stack):
    token = stack.providers["custom"].token(uuid.uuid4().hex)
    assert_error(stack.session(token, {"name": "x", "role": "admin"}), 422, "validation_error")
    response = stack.http.get(f"{stack.functions_url}/session")
    assert_error(response, 405, "method_not_allowed")


def test_verified_email_links_providers_and_unverified_is_email_conflict(stack: Stack):
    email = f"link.{uuid.uuid4().hex[:8]}@example.test"
    original = stack.sign_in("firebase", email=email, email_verified=True)

    linked = stack.sign_in("clerk", email=email.upper(), email_verified=True)
    assert linked["user"]["id"] == original["user"]["id"]

    conflict = stack.session(stack.providers["custom"].token(
        uuid.uuid4().hex, email=email, email_verified=False))
    assert_error(conflict, 409, "email_conflict")

    with psycopg.connect(stack.database_url) as conn:
        providers = conn.execute(
            "select provider from public.user_identities where user_id = %s order by provider",
            (original["user"]["id"],),
        ).fetchall()
    assert providers == [("clerk",), ("firebase",)]


def test_session_rate_limit_holds_under_a_burst(stack: Stack):
    token = stack.providers["custom"].token(uuid.uuid4().hex)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda _: stack.session(token), range(RATE_LIMIT + 7)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * RATE_LIMIT + [429] * 7
    limited = next(r for r in responses if r.status_code == 429)
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
    # Another identity is not affected.
    assert stack.session(stack.providers["custom"].token(uuid.uuid4().hex)).status_code == 200
