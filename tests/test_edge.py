"""The declarative edge (shared/edge.py): paths and methods, and the order of its checks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shared import access_tokens
from shared.access_tokens import mint_access_token
from shared.edge import ANY_PATH, Call, Endpoint, serve
from shared.errors import Unauthorized
from shared.http import FunctionUrlRequest, json_response
from shared.request_model import RequestModel
from shared.settings import reset_settings

SECRET = "edge-tests-jwt-secret-with-32-plus-characters"


class Body(RequestModel):
    n: int


def event(method: str, path: str = "/", body: Any = None, **headers: str) -> dict[str, Any]:
    return {"requestContext": {"http": {"method": method}}, "rawPath": path,
            "headers": headers, "body": "" if body is None else json.dumps(body)}


def answer(call: Call[Any]) -> dict[str, Any]:
    return json_response(200, {"params": dict(call.params), "key": call.idempotency_key,
                               "body": call.body.model_dump()})


def status_and_code(response: dict[str, Any]) -> tuple[int, str | None]:
    body = json.loads(response["body"]) if response["body"] else {}
    return response["statusCode"], (body.get("error") or {}).get("code")


@pytest.fixture
def token(monkeypatch) -> Iterator[str]:
    for name, value in {"SUPABASE_URL": "http://127.0.0.1:9", "SUPABASE_ANON_KEY": "a",
                        "SUPABASE_SERVICE_ROLE_KEY": "s", "SUPABASE_JWT_SECRET": SECRET}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("UPSTASH_REDIS_REST_URL", raising=False)
    reset_settings()
    access_tokens.set_erased_check(lambda user: False)
    yield mint_access_token(uuid.uuid4(), secret=SECRET).token
    access_tokens.set_erased_check(None)
    reset_settings()


def test_a_literal_path_comes_before_a_parameter_and_a_known_path_answers_405():
    handler = serve(Endpoint("POST", "/setup", answer), Endpoint("DELETE", "/{id}", answer),
                    function="payment-methods")

    assert json.loads(handler(event("DELETE", "/pm_1"), None)["body"])["params"] == {"id": "pm_1"}
    assert status_and_code(handler(event("POST", "/setup"), None)) == (200, None)
    assert status_and_code(handler(event("DELETE", "/setup"), None)) == (405, "method_not_allowed")
    assert status_and_code(handler(event("GET", "/pm_1"), None)) == (405, "method_not_allowed")
    assert status_and_code(handler(event("POST", "/a/b"), None)) == (404, "not_found")
    assert status_and_code(handler(event("POST", "/"), None)) == (404, "not_found")


def test_any_path_takes_every_path_of_the_function_url():
    handler = serve(Endpoint("POST", ANY_PATH, answer), function="stripe-webhook")

    assert status_and_code(handler(event("POST", "/x/y"), None)) == (200, None)
    assert status_and_code(handler(event("GET"), None)) == (405, "method_not_allowed")


def test_the_caller_is_checked_before_the_body_and_the_body_before_the_key(token):
    handler = serve(Endpoint("POST", "/", answer, auth="user", body=Body,
                             idempotency="required"), function="create-reading")
    auth = {"authorization": f"Bearer {token}"}

    assert status_and_code(handler(event("POST", body={"n": "x"}), None))[0] == 401
    assert status_and_code(handler(event("POST", body={"n": "x"}, **auth), None))[0] == 422
    missing_key = json.loads(handler(event("POST", body={"n": 1}, **auth), None)["body"])
    assert "Idempotency-Key" in missing_key["error"]["message"]
    bad_key = handler(event("POST", body={"n": 1}, **auth, **{"idempotency-key": "k\n"}), None)
    assert status_and_code(bad_key) == (422, "validation_error")
    ok = handler(event("POST", body={"n": 1}, **auth, **{"idempotency-key": "k-1"}), None)
    assert json.loads(ok["body"]) == {"params": {}, "key": "k-1", "body": {"n": 1}}


def test_an_optional_key_may_be_left_out_and_a_verifier_runs_first():
    seen: list[str] = []

    def verify(request: FunctionUrlRequest) -> None:
        seen.append(request.method)
        if request.header("x-signature") != "good":
            raise Unauthorized()

    handler = serve(Endpoint("POST", ANY_PATH, answer, verify=verify, body=Body,
                             idempotency="optional"), function="job-consumer")

    assert status_and_code(handler(event("POST", body={"n": "x"}), None))[0] == 401
    ok = handler(event("POST", body={"n": 2}, **{"x-signature": "good"}), None)
    assert json.loads(ok["body"])["key"] is None
    assert seen == ["POST", "POST"]


def test_a_body_named_by_module_and_class_parses_like_the_class_itself(token):
    handler = serve(Endpoint("POST", "/", answer, auth="user", body="tests.test_edge:Body"),
                    function="create-reading")
    auth = {"authorization": f"Bearer {token}"}

    ok = handler(event("POST", body={"n": "4"}, **auth), None)
    assert json.loads(ok["body"])["body"] == {"n": 4}
    assert status_and_code(handler(event("POST", body={"n": 1, "m": 2}, **auth), None)) == \
        (422, "validation_error")


def test_a_body_name_must_be_module_and_class_and_name_a_model(token):
    with pytest.raises(ValueError, match="module:Class"):
        Endpoint("POST", "/", answer, body="tests.test_edge.Body")
    handler = serve(Endpoint("POST", "/", answer, auth="user", body="tests.test_edge:answer"),
                    function="create-reading")
    auth = {"authorization": f"Bearer {token}"}
    # A name of something else fails its request as a 500, never as a parsed body.
    assert status_and_code(handler(event("POST", body={"n": 1}, **auth), None)) == \
        (500, "internal_error")
