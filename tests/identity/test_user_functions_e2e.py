"""The whole local stack (as `make dev` / `make journey` run it): a newcomer signs in through the
local identity provider and sees their own profile only; every user function accepts the access
token `session` mints and nothing else; the one rate limit holds under a burst in each of them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from devstack.journey import Journey, read_and_edit_profile, sign_in, sign_in_first_user
from tests.identity.sql import scalar
from tests.support.local_stack import running_local_stack

RATE_LIMIT = 4
BURST = RATE_LIMIT + 4
API_TABLES = ["users", "wallet_transactions", "payments", "user_payment_methods",
              "tarot_readings", "jobs", "job_attempts", "user_invites"]


@pytest.fixture(scope="module")
def journey(tmp_path_factory: Any, database_factory: Any) -> Iterator[Journey]:
    environment = {"RATE_LIMIT_REQUESTS": str(RATE_LIMIT), "RATE_LIMIT_WINDOW_SECONDS": "60"}
    with running_local_stack(tmp_path_factory.mktemp("stack"),
                             database_factory(migrate=False, bootstrap=False),
                             environment) as (stack, client):
        yield Journey(stack.info, client)


def _user(journey: Journey, label: str) -> dict[str, Any]:
    sign_in(journey, label, f"User {label}")
    return dict(journey.state[label])


def _provider_token(journey: Journey, **claims: Any) -> str:
    response = journey.client.post(journey.info["identity"]["token_url"],
                                   json={"sub": uuid.uuid4().hex, **claims})
    assert response.status_code == 200, response.text
    return str(response.json()["id_token"])


def test_newcomer_signs_in_with_the_local_provider_and_sees_only_their_own_profile(journey):
    other = _user(journey, "other")  # someone who was here before, with a pending payment
    journey.expect(journey.function("purchase", token=other["token"],
                                    json={"package": "starter"}), 201)

    sign_in_first_user(journey)
    read_and_edit_profile(journey)

    me = journey.state["first"]
    token = me["token"]
    (profile,) = journey.expect(journey.rest("GET", "users?select=*", token), 200)
    assert profile["id"] == me["user"]["id"]
    assert profile["name"] == "Mimi (journey)"
    for table in API_TABLES[1:]:
        assert journey.expect(journey.rest("GET", f"{table}?select=*", token), 200) == [], table
    assert journey.expect(journey.rest("GET", f"users?id=eq.{other['user']['id']}", token),
                          200) == []
    with psycopg.connect(journey.info["database_url"]) as conn:
        assert scalar(conn, "select count(*) from public.payments") == 1
        assert scalar(conn, "select star_balance from public.users where id = %s",
                      (me["user"]["id"],)) == 0


def test_stack_file_names_the_identity_providers_issuer_and_secret(journey):
    identity = journey.info["identity"]
    assert journey.info["environment"]["CUSTOM_ISSUER"] == identity["issuer"]
    assert journey.info["environment"]["CUSTOM_HS256_SECRET"] == identity["hs256_secret"]
    now = int(time.time())
    subject = uuid.uuid4().hex
    signed_here = jwt.encode({"iss": identity["issuer"], "aud": identity["audience"],
                              "sub": subject, "iat": now, "exp": now + 300},
                             identity["hs256_secret"], algorithm="HS256")

    session = journey.expect(journey.function("session", token=signed_here), 200)

    with psycopg.connect(journey.info["database_url"]) as conn:
        assert scalar(conn, "select user_id from public.user_identities"
                            " where provider = 'custom' and external_id = %s",
                      (subject,)) == uuid.UUID(session["user"]["id"])


# (function, method, path, body, Idempotency-Key wanted, status of an accepted call of a user
# with nothing: no stars, no such invite code, no such card)
CALLS: dict[str, tuple[str, str, str, dict[str, Any] | None, bool, int]] = {
    "purchase": ("purchase", "POST", "", {"package": "starter"}, False, 201),
    "create-reading": ("create-reading", "POST", "",
                       {"question": "ความรักของฉัน", "card_count": 3}, True, 402),
    "redeem-invite": ("redeem-invite", "POST", "", {"invite_code": "ZZZZ2345"}, False, 404),
    "payment-methods-setup": ("payment-methods", "POST", "/setup", {}, False, 201),
    "payment-methods-delete": ("payment-methods", "DELETE", f"/{uuid.uuid4()}", None, False,
                               404),
}


def _call(journey: Journey, name: str, token: str | None) -> httpx.Response:
    function, method, path, body, keyed, _ = CALLS[name]
    return journey.function(function, path, token=token, method=method, json=body,
                            idempotency_key=str(uuid.uuid4()) if keyed else None)


def _bad_access_tokens(journey: Journey) -> dict[str, str | None]:
    info = journey.info
    now = int(time.time())
    user_claims = {"sub": str(uuid.uuid4()), "role": "authenticated", "aud": "authenticated"}
    return {
        "missing": None,
        "garbage": "not-a-token",
        "expired": jwt.encode({**user_claims, "iat": now - 7200, "exp": now - 3600},
                              info["jwt_secret"], algorithm="HS256"),
        "other_secret": jwt.encode({**user_claims, "iat": now, "exp": now + 600},
                                   "another-secret-that-is-long-enough-x", algorithm="HS256"),
        "anon_key": info["anon_key"],
        "service_role_key": info["service_role_key"],
        "provider_token": _provider_token(journey),
    }


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_user_function_accepts_only_the_session_access_token(journey, name):
    with psycopg.connect(journey.info["database_url"]) as conn:
        before = scalar(conn, "select count(*) from public.payments")

    for kind, token in _bad_access_tokens(journey).items():
        response = _call(journey, name, token)
        assert response.status_code == 401, (kind, response.text)
        assert response.json()["error"]["code"] == "unauthorized", kind

    with psycopg.connect(journey.info["database_url"]) as conn:
        assert scalar(conn, "select count(*) from public.payments") == before
    accepted = _call(journey, name, _user(journey, f"accept-{name}")["token"])
    assert accepted.status_code == CALLS[name][5], accepted.text


def _burst(send: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        return list(pool.map(send, range(BURST)))


def _assert_limited(responses: list[httpx.Response], allowed_status: int) -> None:
    statuses = sorted(r.status_code for r in responses)
    assert statuses == sorted([allowed_status] * RATE_LIMIT + [429] * (BURST - RATE_LIMIT)), [
        (r.status_code, r.text[:200]) for r in responses]
    for limited in (r for r in responses if r.status_code == 429):
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60


def test_session_rate_limit_holds_under_a_burst(journey):
    token = _provider_token(journey)
    _assert_limited(_burst(lambda _: journey.function("session", token=token)), 200)
    # Another identity still signs in.
    journey.expect(journey.function("session", token=_provider_token(journey)), 200)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_user_function_rate_limit_holds_under_a_burst(journey, name):
    token = _user(journey, f"burst-{name}")["token"]

    _assert_limited(_burst(lambda _: _call(journey, name, token)), CALLS[name][5])

    # The limit is the user's own: another user is served.
    other = _call(journey, name, _user(journey, f"calm-{name}")["token"])
    assert other.status_code == CALLS[name][5], other.text


def _give_stars(journey: Journey, user_id: str, stars: int) -> None:
    with psycopg.connect(journey.info["database_url"], autocommit=True) as conn:
        conn.execute("select private.apply_wallet_change(%s, 'STAR', %s, 'purchase', %s)",
                     (user_id, stars, f"test-grant:{uuid.uuid4()}"))


def test_one_idempotency_key_from_two_users_gives_each_their_own_result(journey):
    a, b = _user(journey, "key-a"), _user(journey, "key-b")
    for user in (a, b):
        _give_stars(journey, user["user"]["id"], 5)
    key = f"shared-{uuid.uuid4()}"
    results: dict[str, list[dict[str, Any]]] = {}
    for name, function, path, body, status in (
        ("purchase", "purchase", "", {"package": "starter"}, 201),
        ("setup", "payment-methods", "/setup", {}, 201),
        ("reading", "create-reading", "", {"question": "งานใหม่", "card_count": 3}, 202),
    ):
        results[name] = [journey.expect(journey.function(
            function, path, token=user["token"], idempotency_key=key, json=body), status)
            for user in (a, b)]

    assert results["purchase"][0]["payment_id"] != results["purchase"][1]["payment_id"]
    assert (results["purchase"][0]["payment_intent_id"]
            != results["purchase"][1]["payment_intent_id"])
    assert results["setup"][0]["setup_intent_id"] != results["setup"][1]["setup_intent_id"]
    assert results["reading"][0]["job_id"] != results["reading"][1]["job_id"]
    with psycopg.connect(journey.info["database_url"]) as conn:
        for user, reading in zip((a, b), results["reading"], strict=True):
            owner = scalar(conn, "select user_id from public.jobs where id = %s",
                           (reading["job_id"],))
            assert owner == uuid.UUID(user["user"]["id"])
            assert scalar(conn, "select star_balance from public.users where id = %s",
                          (user["user"]["id"],)) == 5 - reading["cost_stars"]


def test_a_thai_app_gets_thai_error_messages_and_the_same_codes(journey):
    user = _user(journey, "thai-speaker")  # signed up just now: no stars
    url = journey.info["functions"]["create-reading"]

    def ask(language: str, token: str | None = user["token"]) -> httpx.Response:
        headers = {"Accept-Language": language, "Idempotency-Key": str(uuid.uuid4())}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.post(url, headers=headers,
                          json={"question": "งานใหม่จะดีไหม", "card_count": 3}, timeout=30)

    pairs = [(ask("th-TH,th;q=0.9,en;q=0.8"), ask("en-US,en;q=0.9,th;q=0.5")),
             (ask("th", token=None), ask("fr", token=None))]
    assert [(t.status_code, t.json()["error"]["code"]) for t, _ in pairs] == [
        (402, "insufficient_stars"), (401, "unauthorized")]
    for thai, english in pairs:
        assert thai.status_code == english.status_code
        assert thai.json()["error"]["code"] == english.json()["error"]["code"]
        assert any("\u0e00" <= ch <= "\u0e7f" for ch in thai.json()["error"]["message"])
        assert english.json()["error"]["message"].isascii()
        assert thai.headers["content-language"] == "th"
        assert english.headers["content-language"] == "en"
