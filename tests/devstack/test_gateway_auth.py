"""Gateway contract: bearer tokens, roles and the transaction-local settings SQL sees."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest

from tests.devstack.conftest import ALICE, GW_SECRET, mint


def _assert_jwt_error(response: httpx.Response, codes: tuple[str, ...] = ("PGRST301",)) -> dict:
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"code", "details", "hint", "message"}
    assert body["code"] in codes
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    return body


def test_expired_token_is_rejected_not_downgraded(rest: httpx.Client) -> None:
    token = mint(exp=int(time.time()) - 120)
    body = _assert_jwt_error(rest.get("/items", headers={"Authorization": f"Bearer {token}"}),
                             ("PGRST301", "PGRST303"))
    assert body["message"] == "JWT expired"


def test_token_within_clock_skew_is_accepted(rest: httpx.Client) -> None:
    token = mint(exp=int(time.time()) - 10)
    assert rest.get("/items", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_token_signed_with_another_secret_is_rejected(rest: httpx.Client) -> None:
    token = mint(secret="another-secret-another-secret-0123456789")
    _assert_jwt_error(rest.get("/items", headers={"Authorization": f"Bearer {token}"}))


def test_alg_none_token_is_rejected(rest: httpx.Client) -> None:
    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'role': 'service_role'})}."
    _assert_jwt_error(rest.get("/secrets", headers={"Authorization": f"Bearer {token}"}))


@pytest.mark.parametrize("token", ["abc.def", "not-a-jwt", "a.b.c"])
def test_malformed_token_is_rejected(rest: httpx.Client, token: str) -> None:
    _assert_jwt_error(rest.get("/items", headers={"Authorization": f"Bearer {token}"}))


def test_empty_bearer_is_rejected(rest: httpx.Client) -> None:
    # "Bearer " reaches servers as "Bearer": trailing whitespace is not part of a header value.
    body = _assert_jwt_error(rest.get("/items", headers={"Authorization": "Bearer"}))
    assert "Empty JWT" in body["message"]


def test_future_nbf_is_rejected(rest: httpx.Client) -> None:
    token = mint(nbf=int(time.time()) + 600)
    _assert_jwt_error(rest.get("/items", headers={"Authorization": f"Bearer {token}"}),
                      ("PGRST301", "PGRST303"))


def test_no_token_runs_as_anon_with_anon_claims(rest: httpx.Client) -> None:
    who = rest.post("/rpc/whoami").json()
    assert who["role"] == "anon"
    assert who["claims"] == {"role": "anon"}
    assert who["uid"] is None


def test_token_sets_role_claims_and_request_settings(rest: httpx.Client) -> None:
    token = mint(email="alice@example.test")
    who = rest.get("/rpc/whoami", headers={"authorization": f"bearer {token}",
                                           "x-probe": "ping"}).json()
    assert who["role"] == "authenticated"
    assert who["uid"] == ALICE
    assert who["claims"]["email"] == "alice@example.test"
    assert who["method"] == "GET"
    assert who["path"] == "/rpc/whoami"
    assert who["header_x"] == "ping"
    assert who["read_only"] == "on"
    assert who["legacy_sub"] in (None, "")


def test_request_settings_keep_quotes_and_backslashes(rest: httpx.Client) -> None:
    for probe in ("O'Hara ''", "O'Hara \\ \"x\" \\'"):
        who = rest.post("/rpc/whoami", headers={"x-probe": probe}).json()
        assert who["header_x"] == probe


def test_role_settings_apply_per_request(rest: httpx.Client) -> None:
    anon = rest.post("/rpc/whoami").json()
    user = rest.post("/rpc/whoami", headers={"Authorization": f"Bearer {mint()}"}).json()
    assert anon["timeout"] == "3s"
    assert user["timeout"] == "8s"


def test_token_without_role_claim_runs_as_anon_but_keeps_sub(rest: httpx.Client) -> None:
    who = rest.post("/rpc/whoami", headers={"Authorization": f"Bearer {mint(role=None)}"}).json()
    assert who["role"] == "anon"
    assert who["uid"] == ALICE


def test_unknown_role_is_401(rest: httpx.Client) -> None:
    response = rest.get("/items", headers={"Authorization": f"Bearer {mint(role='ghost')}"})
    assert response.status_code in (400, 401)
    assert response.json()["code"] == "22023"


def test_anon_without_privilege_gets_401_authenticated_gets_403(rest: httpx.Client) -> None:
    anon = rest.get("/secrets")
    assert anon.status_code == 401
    assert anon.json()["code"] == "42501"
    assert anon.headers["WWW-Authenticate"] == "Bearer"
    anon_key = rest.get("/secrets", headers={"Authorization": f"Bearer {mint(role='anon')}"})
    assert anon_key.status_code == 401
    user = rest.get("/secrets", headers={"Authorization": f"Bearer {mint()}"})
    assert user.status_code == 403
    assert user.json()["code"] == "42501"


def test_apikey_is_used_only_without_authorization(rest: httpx.Client) -> None:
    fallback = rest.post("/rpc/whoami", headers={"apikey": mint()}).json()
    assert fallback["role"] == "authenticated"
    explicit = rest.post("/rpc/whoami", headers={"apikey": mint(),
                                                 "Authorization": f"Bearer {mint('anon')}"})
    assert explicit.json()["role"] == "anon"


def test_service_role_bypasses_rls(rest: httpx.Client) -> None:
    token = mint(role="service_role", sub=None)
    response = rest.get("/secrets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == []


def test_secret_is_never_needed_by_clients(rest: httpx.Client) -> None:
    # The token is checked against the configured secret, not one the client could supply.
    forged = mint(role="service_role", secret=GW_SECRET[::-1])
    _assert_jwt_error(rest.get("/secrets", headers={"Authorization": f"Bearer {forged}"}))
