"""Structured JSON logs and EMF metrics written by every handler through shared.http.adapter."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import uuid

import pytest

from shared import observability
from shared.access_tokens import mint_access_token
from shared.http import FunctionUrlRequest, adapter, json_response

SECRET = "jwt-secret-for-observability-tests-0123456789"


@pytest.fixture
def output(monkeypatch):
    """Log lines and EMF documents of the invocations a test runs."""
    logs = io.StringIO()
    emitted: list[str] = []
    observability.configure_logging(logs)
    observability.metrics.use_sink(emitted.append)
    yield lambda: ([json.loads(line) for line in logs.getvalue().splitlines()],
                   [json.loads(line) for line in emitted])
    observability.configure_logging(sys.stdout)
    observability.metrics.use_sink(None)


def event(body: dict | None = None, headers: dict | None = None, request_id: str = "req-1") -> dict:
    return {
        "rawPath": "/", "headers": headers or {},
        "requestContext": {"requestId": request_id, "http": {"method": "POST", "sourceIp": "127.0.0.1"}},
        "body": json.dumps(body or {}), "isBase64Encoded": False,
    }


def test_every_invocation_logs_one_json_line_with_request_id_function_and_status(output) -> None:
    handler = adapter(lambda request: json_response(200, {"ok": True}), function="session")

    handler(event(request_id="req-42"), None)

    logs, _ = output()
    done = [line for line in logs if line["message"] == "request completed"]
    assert len(done) == 1
    assert done[0]["request_id"] == "req-42"
    assert done[0]["function"] == "session"
    assert done[0]["status"] == 200
    assert done[0]["service"] == "mimivibe"
    assert done[0]["duration_ms"] >= 0


def test_user_id_is_logged_once_the_token_is_verified_and_not_on_the_next_call(output, monkeypatch) -> None:
    from shared import access_tokens
    from shared.settings import Settings

    settings = Settings(supabase_url="http://127.0.0.1:9", supabase_anon_key="a",
                        supabase_service_role_key="s", supabase_jwt_secret=SECRET)
    monkeypatch.setattr(access_tokens, "_erased_check", lambda user: False)
    user_id = uuid.uuid4()
    token = mint_access_token(user_id, secret=SECRET).token

    def route(request: FunctionUrlRequest):
        access_tokens.authenticate(request, settings)
        logging.getLogger("mimivibe.test").info("working")
        return json_response(200, {})

    handler = adapter(route, function="redeem-invite")
    handler(event(headers={"Authorization": f"Bearer {token}"}), None)
    handler(event(request_id="req-2"), None)

    logs, _ = output()
    working = next(line for line in logs if line["message"] == "working")
    assert working["user_id"] == str(user_id)
    last = [line for line in logs if line["message"] == "request completed"][-1]
    assert last["request_id"] == "req-2" and "user_id" not in last
    assert token not in json.dumps(logs)


def test_tokens_secrets_card_numbers_and_question_text_never_reach_info_logs(output) -> None:
    jwt = mint_access_token(uuid.uuid4(), secret=SECRET).token
    log = logging.getLogger("mimivibe.test")

    def route(request: FunctionUrlRequest):
        log.info("calling with %s and sk_test_51abcDEF and card 4242 4242 4242 4242", jwt,
                 extra={"question": "ความรักของฉันจะเป็นอย่างไร", "client_secret": "pi_1_secret_2",
                        "headers": {"authorization": "Bearer abc"}})
        log.debug("debug may show the question", extra={"question": "visible at debug"})
        return json_response(200, {})

    adapter(route, function="create-reading")(event(), None)

    text = json.dumps(output()[0], ensure_ascii=False)
    for secret in (jwt, "sk_test_51abcDEF", "4242 4242 4242 4242", "ความรัก", "pi_1_secret_2",
                   "Bearer abc"):
        assert secret not in text
    assert "[redacted]" in text


def test_a_crash_logs_an_error_and_returns_the_error_json(output) -> None:
    def route(request: FunctionUrlRequest):
        raise RuntimeError("boom")

    response = adapter(route, function="purchase")(event(), None)

    assert response["statusCode"] == 500
    assert "boom" not in response["body"]
    logs, _ = output()
    assert [line["level"] for line in logs if line["message"] == "request completed"] == ["ERROR"]


def test_use_case_metrics_are_flushed_as_emf_with_their_dimensions(output) -> None:
    def route(request: FunctionUrlRequest):
        observability.metrics.add(observability.STARS_CREDITED, 17, dimensions={"package": "basic"})
        observability.add_metric(observability.QUEUE_LAG, 2.5, "Seconds")
        return json_response(200, {})

    adapter(route, function="stripe-webhook")(event({"type": "payment_intent.succeeded"}), None)

    _, docs = output()
    by_metric = {m["Name"]: doc for doc in docs for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    credited = by_metric["StarsCredited"]
    assert credited["StarsCredited"] in (17, [17.0])
    assert credited["package"] == "basic" and credited["function"] == "stripe-webhook"
    assert credited["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MimiVibe"
    assert by_metric["QueueLagSeconds"]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Seconds"


def test_the_adapter_derives_no_effect_metric_from_a_response(output) -> None:
    # A create-reading replay returns the same 202 as the first call: counting responses
    # would count its reading and stars twice. Effects are recorded by the use cases.
    adapter(lambda r: json_response(202, {"job_id": "j", "status": "queued", "cost_stars": 2}),
            function="create-reading")(event(), None)
    adapter(lambda r: json_response(200, {"received": True, "duplicate": False}),
            function="stripe-webhook")(event({"type": "payment_intent.succeeded"}), None)
    adapter(lambda r: json_response(200, {"claimed": 4, "succeeded": 3, "retried": 1,
                                          "dead_lettered": 0, "requeued": 0}),
            function="job-consumer")(event(), None)

    _, docs = output()
    assert docs == []


def test_importing_observability_does_not_import_powertools() -> None:
    code = ("import sys, shared.http, shared.observability; "
            "print(any(m.startswith('aws_lambda_powertools') for m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_queue_health_row_becomes_depth_lag_retry_and_dead_letter_metrics(output) -> None:
    def route(request: FunctionUrlRequest):
        observability.record_queue_health({"depth": 4, "oldest_queued_age_seconds": 12.5,
                                           "retries_due": 1, "dead_letters": 2})
        return json_response(200, {})

    adapter(route, function="job-consumer")(event(), None)

    _, docs = output()
    units = {m["Name"]: m["Unit"] for d in docs for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {"QueueDepth": "Count", "QueueLagSeconds": "Seconds", "RetriesDue": "Count",
                     "DeadLetteredJobs": "Count"}
    assert docs[0]["QueueLagSeconds"] in (12.5, [12.5])


@pytest.fixture
def debug():
    """DEBUG lines are written too (Lambda's level is INFO unless POWERTOOLS_LOG_LEVEL says)."""
    logger = observability.get_logger()
    previous = logger.log_level
    logger.setLevel(logging.DEBUG)
    yield
    logger.setLevel(previous)


JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"


@pytest.mark.parametrize(("rule", "text", "secret"), [
    ("jwt", f"token was {JWT} ok", JWT),
    ("bearer", "header Bearer opaque-session-value", "opaque-session-value"),
    ("stripe secret key", "key sk_live_51Habc123XYZ", "sk_live_51Habc123XYZ"),
    ("stripe restricted key", "key rk_test_51Habc123XYZ", "rk_test_51Habc123XYZ"),
    ("stripe webhook secret", "secret whsec_abc123DEF456", "whsec_abc123DEF456"),
    ("payment intent client secret", "cs pi_3Nabc_secret_Xyz789", "pi_3Nabc_secret_Xyz789"),
    ("setup intent client secret", "cs seti_1Nabc_secret_Q1w2e3", "seti_1Nabc_secret_Q1w2e3"),
    ("qstash signing key", "signing sig_7kYjw48HXyz1234567ab", "sig_7kYjw48HXyz1234567ab"),
    ("qstash key", "next key_7kYjw48HXyz1234567ab", "key_7kYjw48HXyz1234567ab"),
    ("card number, spaced", "card 4242 4242 4242 4242 declined", "4242 4242 4242 4242"),
    ("card number, dashed", "card 5555-5555-5555-4444 declined", "5555-5555-5555-4444"),
    ("card number, 19 digits", "card 6011000990139424123 x", "6011000990139424123"),
])
def test_each_secret_pattern_is_redacted_from_the_message_at_every_level(
    output, debug, rule, text, secret
) -> None:
    log = logging.getLogger("mimivibe.test")

    def route(request: FunctionUrlRequest):
        log.debug(text)
        log.error("failed: %s", text)
        return json_response(200, {})

    adapter(route, function="session")(event(), None)

    logs, _ = output()
    lines = [line for line in logs if line["message"] != "request completed"]
    assert len(lines) == 2, rule
    for line in lines:
        assert secret not in json.dumps(line, ensure_ascii=False), rule
        assert "[redacted]" in line["message"], rule


def test_short_ids_and_amounts_are_not_mistaken_for_secrets() -> None:
    text = "payment pi_3Nabc amount 14900 user 1234-5678 key_short sig_short"
    assert observability.redact_text(text) == text


@pytest.mark.parametrize("key", [
    "access_token", "refresh_token", "client_secret", "password", "authorization", "api_key",
    "apikey", "stripe_signature", "cookie", "card_number", "cardnumber", "cvc", "cvv", "pan",
    "card_pan", "Upstash-Signature",
])
def test_each_secret_key_is_redacted_whatever_its_value_and_level(output, debug, key) -> None:
    log = logging.getLogger("mimivibe.test")

    def route(request: FunctionUrlRequest):
        log.debug("debug", extra={key: "plain-value-1"})
        log.info("nested", extra={"request": {"headers": {key: "plain-value-2"}}})
        return json_response(200, {})

    adapter(route, function="session")(event(), None)

    text = json.dumps(output()[0])
    assert "plain-value-1" not in text and "plain-value-2" not in text
    assert text.count("[redacted]") == 2


def test_keys_that_only_contain_pan_are_kept(output) -> None:
    def route(request: FunctionUrlRequest):
        logging.getLogger("mimivibe.test").info("ok", extra={"span": "s-1", "company": "c-1"})
        return json_response(200, {})

    adapter(route, function="session")(event(), None)

    line = next(line for line in output()[0] if line["message"] == "ok")
    assert (line["span"], line["company"]) == ("s-1", "c-1")


@pytest.mark.parametrize("key", ["question", "question_text", "prompt", "body"])
def test_question_text_appears_at_debug_only(output, debug, key) -> None:
    log = logging.getLogger("mimivibe.test")

    def route(request: FunctionUrlRequest):
        log.debug("asked", extra={key: "ความรักของฉันจะเป็นอย่างไร"})
        for level in (logging.INFO, logging.WARNING, logging.ERROR):
            log.log(level, "asked", extra={key: "งานใหม่จะดีไหม"})
        return json_response(200, {})

    adapter(route, function="create-reading")(event(), None)

    asked = [line for line in output()[0] if line["message"] == "asked"]
    assert [line[key] for line in asked] == ["ความรักของฉันจะเป็นอย่างไร"] + ["[redacted]"] * 3


def test_exception_text_is_redacted(output) -> None:
    def route(request: FunctionUrlRequest):
        raise RuntimeError("Stripe refused sk_test_51leakedKey for card 4242424242424242")

    adapter(route, function="purchase")(event(), None)

    crashed = next(line for line in output()[0] if line["message"] == "purchase crashed")
    assert "RuntimeError" in crashed["exception"]
    assert crashed["exception_name"] == "RuntimeError"
    text = json.dumps(crashed)
    assert "sk_test_51leakedKey" not in text and "4242424242424242" not in text


def test_a_crash_on_the_question_logs_no_word_of_it_even_in_the_traceback(output) -> None:
    from shared.pipeline.models import QuestionAnalysis

    question = "will-my-secret-lover-come-back-from-chiang-mai-before-the-rains"

    def route(request: FunctionUrlRequest):
        QuestionAnalysis(topic="love", intent="insight", time_frame="unspecified",
                         keywords=[question, "x, input_type=str]"])
        return json_response(200, {})

    adapter(route, function="create-reading")(event(), None)

    crashed = next(line for line in output()[0] if line["message"] == "create-reading crashed")
    assert crashed["level"] == "ERROR" and "ValidationError" in crashed["exception"]
    assert "input_value=[redacted]" in crashed["exception"]
    text = json.dumps(crashed)
    assert "secret-lover" not in text and "chiang" not in text
