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
from shared.errors import InsufficientStars
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


def test_webhook_events_are_counted_by_type_and_outcome(output) -> None:
    handler = adapter(lambda r: json_response(200, {"received": True, "duplicate": True}),
                      function="stripe-webhook")
    rejecting = adapter(lambda r: (_ for _ in ()).throw(InsufficientStars()), function="stripe-webhook")

    handler(event({"type": "charge.refunded"}), None)
    rejecting(event({"type": "charge.refunded"}), None)

    _, docs = output()
    seen = {(d["event_type"], d["outcome"]) for d in docs if "WebhookEvents" in d}
    assert seen == {("charge.refunded", "duplicate"), ("unverified", "rejected")}


def test_reading_and_consumer_counters_come_from_the_function_responses(output) -> None:
    adapter(lambda r: json_response(202, {"job_id": "j", "status": "queued", "cost_stars": 2}),
            function="create-reading")(event(), None)
    adapter(lambda r: json_response(200, {"claimed": 4, "succeeded": 3, "retried": 1,
                                          "dead_lettered": 0, "reclaimed": 0}),
            function="job-consumer")(event(), None)

    _, docs = output()
    values = {k: v for d in docs for k, v in d.items() if k[0].isupper()}
    assert values["ReadingsCreated"] in (1, [1.0]) and values["StarsSpent"] in (2, [2.0])
    assert values["ReadingsCompleted"] in (3, [3.0]) and values["ReadingRetries"] in (1, [1.0])


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
