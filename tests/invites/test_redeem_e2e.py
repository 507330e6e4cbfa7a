"""POST /redeem-invite through the function URL, the REST gateway and Redis (the local stack):
every docs/API.md outcome, the rate limit, and what inviter and invitee then read over REST."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from devstack.stack import LocalStack
from tests.support.local_stack import assert_wallets_consistent, running_local_stack

RATE_LIMIT = 5


class App:
    """The app's side of the stack: sign in, call functions, read REST."""

    def __init__(self, stack: LocalStack, http: httpx.Client) -> None:
        self.info = stack.info
        self.database_url = stack.database_url
        self.http = http

    def sign_in(self) -> dict[str, Any]:
        subject = f"invite-{uuid.uuid4().hex[:12]}"
        id_token = self.http.post(self.info["identity"]["token_url"], json={
            "sub": subject, "email": f"{subject}@example.com", "email_verified": True,
            "name": subject}).json()["id_token"]
        response = self.http.post(f"{self.info['urls']['functions']}/session", json={},
                                  headers={"authorization": f"Bearer {id_token}"})
        assert response.status_code == 200, response.text
        session = response.json()
        return {"token": session["access_token"], **session["user"]}

    def redeem(self, token: str | None, body: Any, method: str = "POST") -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, f"{self.info['urls']['functions']}/redeem-invite",
                                 json=body, headers=headers)

    def rest(self, path: str, token: str) -> Any:
        response = self.http.get(f"{self.info['urls']['rest']}/{path}", headers={
            "apikey": self.info["anon_key"], "authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def app(tmp_path_factory: Any, database_factory: Any) -> Iterator[App]:
    with running_local_stack(tmp_path_factory.mktemp("stack"),
                             database_factory(migrate=False, bootstrap=False),
                             environment={"RATE_LIMIT_REQUESTS": str(RATE_LIMIT),
                                          "RATE_LIMIT_WINDOW_SECONDS": "60"}) as (stack, http):
        yield App(stack, http)


@pytest.fixture(autouse=True)
def wallets_stay_consistent(app: App) -> Iterator[None]:
    yield
    assert_wallets_consistent(app.database_url)


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"] and body["request_id"]


def test_redeem_returns_the_pending_invite_and_both_users_see_it(app):
    inviter, invitee, stranger = app.sign_in(), app.sign_in(), app.sign_in()

    response = app.redeem(invitee["token"], {"invite_code": inviter["invite_code"]})

    assert response.status_code == 200, response.text
    invite = response.json()
    assert invite["status"] == "pending" and invite["inviter_id"] == inviter["id"]
    assert {"invite_id", "expires_at"} <= set(invite)
    for who in (inviter, invitee):
        rows = app.rest("user_invites?select=id,status,inviter_id,invitee_id", who["token"])
        assert rows == [{"id": invite["invite_id"], "status": "pending",
                         "inviter_id": inviter["id"], "invitee_id": invitee["id"]}]
    assert app.rest("user_invites?select=id", stranger["token"]) == []
    assert app.rest("users?select=invited_by", invitee["token"]) == [
        {"invited_by": inviter["id"]}]
    summary = app.http.post(f"{app.info['urls']['rest']}/rpc/wallet_summary", json={}, headers={
        "apikey": app.info["anon_key"], "authorization": f"Bearer {inviter['token']}"}).json()
    assert (summary["pending_invites"], summary["total_invites"], summary["tier"]) == (
        1, 0, "bronze")


def test_unknown_code_is_404_invite_not_found(app):
    assert_error(app.redeem(app.sign_in()["token"], {"invite_code": "ZZZZ2222"}),
                 404, "invite_not_found")


def test_second_redemption_is_409_already_invited(app):
    first, second, invitee = app.sign_in(), app.sign_in(), app.sign_in()
    assert app.redeem(invitee["token"], {"invite_code": first["invite_code"]}).status_code == 200
    assert_error(app.redeem(invitee["token"], {"invite_code": second["invite_code"]}),
                 409, "already_invited")


def test_own_code_is_422_self_invite(app):
    me = app.sign_in()
    assert_error(app.redeem(me["token"], {"invite_code": me["invite_code"]}), 422, "self_invite")


def test_account_older_than_7_days_is_422_invite_window_closed(app):
    inviter, old = app.sign_in(), app.sign_in()
    with psycopg.connect(app.database_url, autocommit=True) as conn:
        conn.execute("update public.users set created_at = now() - interval '8 days'"
                     " where id = %s", (old["id"],))
    assert_error(app.redeem(old["token"], {"invite_code": inviter["invite_code"]}),
                 422, "invite_window_closed")


def test_closing_a_cycle_is_422_invite_cycle(app):
    a, b = app.sign_in(), app.sign_in()
    assert app.redeem(b["token"], {"invite_code": a["invite_code"]}).status_code == 200
    assert_error(app.redeem(a["token"], {"invite_code": b["invite_code"]}), 422, "invite_cycle")


@pytest.mark.parametrize("body", [{}, {"invite_code": ""}, {"invite_code": 123},
                                  {"invite_code": "X" * 65},
                                  {"invite_code": "ABCDEFGH", "inviter_id": "x"}])
def test_malformed_body_is_422_validation_error(app, body):
    assert_error(app.redeem(app.sign_in()["token"], body), 422, "validation_error")


@pytest.mark.parametrize("token", [None, "not-a-jwt"])
def test_missing_or_invalid_access_token_is_401(app, token):
    assert_error(app.redeem(token, {"invite_code": "ABCDEFGH"}), 401, "unauthorized")


def test_only_post_is_allowed(app):
    assert_error(app.redeem(app.sign_in()["token"], None, method="GET"),
                 405, "method_not_allowed")


def test_guessing_codes_is_rate_limited_per_user(app):
    guesser, other = app.sign_in(), app.sign_in()
    statuses = [app.redeem(guesser["token"], {"invite_code": f"ZZZZ{n:04d}"}).status_code
                for n in range(RATE_LIMIT)]
    assert statuses == [404] * RATE_LIMIT

    limited = app.redeem(guesser["token"], {"invite_code": "ZZZZ9999"})

    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
    assert app.redeem(other["token"], {"invite_code": "ZZZZ9999"}).status_code == 404
