"""shared.http.adapter behind the function-URL server: the event a function URL sends becomes a
typed request, and every failure becomes docs/API.md's error JSON with the request id."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.function_urls import create_app
from devstack.serve import ServerThread

HANDLER = '''
from shared.errors import NotFound
from shared.http import FunctionUrlRequest, adapter, json_response
from shared.request_model import RequestModel


class Greeting(RequestModel):
    name: str


def _greet(request: FunctionUrlRequest):
    if request.raw_path == "/missing":
        raise NotFound("No such greeting.")
    body = request.json_body(Greeting)
    return json_response(200, {"hello": body.name, "path": request.raw_path,
                               "query": request.query, "probe": request.header("X-Probe"),
                               "cookies": request.cookies})


handler = adapter(_greet, function="greet")
'''


@pytest.fixture(scope="module")
def greet_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("adapter")
    package = f"adapter_{uuid.uuid4().hex[:8]}"
    (root / package).mkdir()
    (root / package / "__init__.py").write_text("")
    (root / package / "handler.py").write_text(HANDLER)
    (root / "serverless.yml").write_text(textwrap.dedent(f"""\
        service: adapter-test
        provider: {{name: aws, runtime: python3.12}}
        functions:
          greet:
            handler: {package}/handler.handler
            url: true
        """))
    with ServerThread(create_app(root / "serverless.yml", {}), name="adapter-test") as running:
        yield running.url + "/greet"


def test_base64_body_query_headers_and_cookies_reach_the_request_model(greet_url: str) -> None:
    # No text content type: the function URL base64-encodes the body, from_event decodes it.
    r = httpx.post(greet_url + "/hi", params={"lang": "th", "tag": ["a", "b"]},
                   content='{"name": "มิมิ"}'.encode(), cookies={"session": "s1"},
                   headers={"content-type": "application/octet-stream", "X-Probe": "yes"})
    assert r.status_code == 200, r.text
    assert r.json() == {"hello": "มิมิ", "path": "/hi", "query": {"lang": "th", "tag": "a,b"},
                        "probe": "yes", "cookies": ["session=s1"]}


def test_errors_are_the_api_error_json_with_the_request_id(greet_url: str) -> None:
    unknown = httpx.post(greet_url, json={"name": "x", "extra": 1})
    assert unknown.status_code == 422
    body = unknown.json()
    assert body["error"]["code"] == "validation_error"
    assert body["request_id"] == unknown.headers["x-amzn-requestid"]
    assert unknown.headers["x-request-id"] == body["request_id"]
    missing = httpx.post(greet_url + "/missing", json={})
    assert missing.status_code == 404
    assert set(missing.json()) == {"error", "request_id"}
    assert set(missing.json()["error"]) == {"code", "message", "details"}
    bad_json = httpx.post(greet_url, content=b"{nope", headers={"content-type": "application/json"})
    assert (bad_json.status_code, bad_json.json()["error"]["code"]) == (422, "validation_error")
    assert bad_json.json()["request_id"] == bad_json.headers["x-amzn-requestid"]


def test_text_with_a_nul_character_is_a_validation_error_not_a_database_failure(greet_url: str) -> None:
    r = httpx.post(greet_url, json={"name": "a\u0000b"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")


def test_any_sub_path_reaches_the_function_like_a_function_url(greet_url: str) -> None:
    # Starlette's `path` convertor stops at a newline; a function URL passes the path on as is.
    r = httpx.post(greet_url + "/a%0Ab", json={"name": "x"})
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "/a%0Ab"


def test_a_number_too_long_to_parse_is_a_validation_error_not_a_crash(greet_url: str) -> None:
    body = b'{"name": "x", "n": ' + b"9" * 5000 + b"}"
    r = httpx.post(greet_url, content=body, headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")


@pytest.mark.parametrize("content_type", ["application/json", "application/octet-stream"])
def test_a_body_over_the_limit_is_413_whether_or_not_it_came_base64_encoded(
        greet_url: str, content_type: str) -> None:
    body = b'{"name": "' + b"x" * (64 * 1024) + b'"}'
    r = httpx.post(greet_url, content=body, headers={"content-type": content_type})
    assert (r.status_code, r.json()["error"]["code"]) == (413, "payload_too_large")
    fits = b'{"name": "' + b"x" * (60 * 1024) + b'"}'
    assert httpx.post(greet_url, content=fits,
                      headers={"content-type": content_type}).status_code == 200
