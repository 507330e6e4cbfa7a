"""The function-URL server gives handlers the events and responses a deployed function URL does."""

from __future__ import annotations

import base64
import json
import os
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from devstack.function_urls import create_app
from devstack.serve import ServerThread

ENV_NAME = "MIMIVIBE_FNURL_TEST_VALUE"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"

HANDLERS = '''
import base64
import json
import os
import time

SEEN_AT_IMPORT = os.environ.get("{env}")
IMPORTS = globals().get("IMPORTS", 0) + 1


def echo(event, context):
    info = {{
        "event": event,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "env_at_import": SEEN_AT_IMPORT,
        "imports": IMPORTS,
    }}
    return {{"statusCode": 200, "headers": {{"content-type": "application/json"}},
            "body": json.dumps(info)}}


def plain(event, context):
    return {{"hello": "world"}}


def text(event, context):
    return "Hello, world!"


def binary(event, context):
    return {{
        "statusCode": 201,
        "headers": {{"Content-Type": "image/png", "X-Custom": "yes"}},
        "cookies": ["a=1; Max-Age=60", "b=2; HttpOnly"],
        "body": base64.b64encode({png!r}).decode(),
        "isBase64Encoded": True,
    }}


def crash(event, context):
    raise RuntimeError("boom")


def slow(event, context):
    time.sleep(0.6)
    return {{"slept": True}}


def sleepy(event, context):
    time.sleep(2)
    return {{"late": True}}
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("fnurl")
    package = f"fnurl_{uuid.uuid4().hex[:8]}"
    (root / package).mkdir()
    (root / package / "__init__.py").write_text("")
    (root / package / "handlers.py").write_text(HANDLERS.format(env=ENV_NAME, png=PNG))
    functions = "\n".join(
        f"  {name}:\n    handler: {package}/handlers.{attr}\n    url: true{extra}"
        for name, attr, extra in [
            ("echo-fn", "echo", ""),
            ("plain", "plain", ""),
            ("text", "text", ""),
            ("binary", "binary", ""),
            ("crash", "crash", ""),
            ("slow", "slow", ""),
            ("sleepy", "sleepy", "\n    timeout: 1"),
        ]
    )
    (root / "serverless.yml").write_text(
        textwrap.dedent(
            """\
            service: fnurl-test
            provider:
              name: aws
              runtime: python3.12
              timeout: 12
              memorySize: 256
              environment:
                SECRET_ID: !Ref SomeSecret
            functions:
            """
        )
        + functions
        + "\n"
    )
    app = create_app(root / "serverless.yml", {ENV_NAME: "from-the-stack"})
    try:
        with ServerThread(app, name="function-urls-test") as running:
            yield running.url
    finally:
        os.environ.pop(ENV_NAME, None)


def echo(server, method="POST", path="", **kwargs):
    response = httpx.request(method, f"{server}/echo-fn{path}", timeout=10, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def test_sub_path_becomes_raw_path_and_function_name_is_stripped(server):
    info = echo(server, path="/setup/step%202")
    assert info["event"]["rawPath"] == "/setup/step%202"
    assert info["event"]["requestContext"]["http"]["path"] == "/setup/step%202"
    assert info["event"]["requestContext"]["http"]["method"] == "POST"
    assert echo(server, method="DELETE")["event"]["rawPath"] == "/"


def test_event_has_payload_2_0_shape(server):
    event = echo(server, headers={"user-agent": "journey/1.0"})["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    context = event["requestContext"]
    assert context["http"]["sourceIp"] == "127.0.0.1"
    assert context["http"]["userAgent"] == "journey/1.0"
    assert context["http"]["protocol"] == "HTTP/1.1"
    assert abs(context["timeEpoch"] - time.time() * 1000) < 60_000
    assert context["requestId"]
    assert "body" not in event and event["isBase64Encoded"] is False


def test_query_string_is_raw_and_parsed_with_duplicates_comma_joined(server):
    event = echo(server, method="GET", params=[("a", "1"), ("a", "2"), ("b", "x y"), ("c", "")])[
        "event"
    ]
    assert event["rawQueryString"] == "a=1&a=2&b=x+y&c="
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y", "c": ""}
    assert "queryStringParameters" not in echo(server, method="GET")["event"]


def test_headers_are_lower_cased_and_duplicates_comma_joined(server):
    headers = [("X-Trace", "one"), ("x-trace", "two"), ("Authorization", "Bearer t")]
    event = echo(server, headers=headers)["event"]
    assert event["headers"]["x-trace"] == "one,two"
    assert event["headers"]["authorization"] == "Bearer t"
    assert all(name == name.lower() for name in event["headers"])


def test_cookies_move_from_the_header_to_the_cookies_list(server):
    event = echo(server, headers={"Cookie": "session=abc; theme=dark"})["event"]
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert "cookie" not in event["headers"]


def test_textual_bodies_arrive_as_text(server):
    payload = {"question": "ความรักของฉันจะเป็นอย่างไร"}
    event = echo(server, json=payload)["event"]
    assert event["isBase64Encoded"] is False
    assert json.loads(event["body"]) == payload
    event = echo(server, content=b"hello", headers={"content-type": "text/plain"})["event"]
    assert event["body"] == "hello" and event["isBase64Encoded"] is False


@pytest.mark.parametrize(
    "content_type",
    ["application/octet-stream", "application/x-www-form-urlencoded", None],
)
def test_non_textual_bodies_arrive_base64_encoded(server, content_type):
    headers = {"content-type": content_type} if content_type else {}
    event = echo(server, content=PNG, headers=headers)["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == PNG


def test_context_carries_function_settings_and_remaining_time(server):
    info = echo(server)
    assert info["function_name"] == "echo-fn"
    assert info["memory_limit_in_mb"] == 256
    # provider timeout is 12 s: the handler sees almost all of it left
    assert 10_000 < info["remaining_ms"] <= 12_000
    assert info["aws_request_id"] == info["event"]["requestContext"]["requestId"]


def test_environment_is_set_before_the_cold_start_and_the_handler_stays_warm(server):
    first = echo(server)
    second = echo(server)
    assert first["env_at_import"] == "from-the-stack"
    assert first["imports"] == second["imports"] == 1


def test_dict_without_status_code_is_a_200_json_response(server):
    response = httpx.get(f"{server}/plain")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"hello": "world"}


def test_plain_string_result_is_served_as_a_json_string(server):
    response = httpx.get(f"{server}/text")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.text == '"Hello, world!"'


def test_base64_response_is_decoded_and_cookies_become_set_cookie_headers(server):
    response = httpx.get(f"{server}/binary")
    assert response.status_code == 201
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-custom"] == "yes"
    assert response.headers.get_list("set-cookie") == ["a=1; Max-Age=60", "b=2; HttpOnly"]


def test_unknown_function_is_404(server):
    response = httpx.post(f"{server}/no-such-function/x")
    assert response.status_code == 404


def test_handler_crash_is_502_without_a_stack_trace(server):
    response = httpx.post(f"{server}/crash")
    assert response.status_code == 502
    assert "boom" not in response.text and "Traceback" not in response.text


def test_handler_past_its_timeout_is_502(server):
    started = time.monotonic()
    response = httpx.post(f"{server}/sleepy", timeout=10)
    assert response.status_code == 502
    assert time.monotonic() - started < 1.9


def test_slow_handler_does_not_block_other_calls(server):
    with ThreadPoolExecutor(max_workers=3) as pool:
        started = time.monotonic()
        slow_calls = [pool.submit(httpx.post, f"{server}/slow", timeout=10) for _ in range(2)]
        time.sleep(0.05)
        fast = httpx.get(f"{server}/plain", timeout=10)
        fast_elapsed = time.monotonic() - started
        results = [call.result() for call in slow_calls]
        total = time.monotonic() - started
    assert fast.status_code == 200 and fast_elapsed < 0.5
    assert [r.json() for r in results] == [{"slept": True}] * 2
    assert total < 1.1  # the two slow calls ran side by side


def test_index_lists_every_function(server):
    listed = httpx.get(f"{server}/").json()["functions"]
    assert set(listed) == {"echo-fn", "plain", "text", "binary", "crash", "slow", "sleepy"}
    assert listed["plain"] == f"{server}/plain"
