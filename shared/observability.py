"""Structured JSON logs and CloudWatch embedded-metric-format (EMF) metrics, via Powertools.

Every handler goes through `shared.http.adapter`, which opens an invocation here: the log
context carries `request_id` and `function` (and `user_id` once `bind(user_id=...)` is called),
one `request completed` line is written per invocation, and the metrics recorded during it are
flushed as EMF blobs on stdout (CloudWatch turns them into metrics; no API call is made).

Use cases record metrics with `metrics.add(name, value, unit, dimensions)`; the names are the
constants below. Metrics that the public response of a function already states (readings
created, consumer outcomes, webhook events) are derived here from that response, so each
counter has exactly one writer.

Powertools is imported on first use, not at import time, so importing a handler stays cheap
(measured by `python -m benchmarks.handler_imports`). Log records pass a redaction filter:
tokens, secrets and card details never reach the output, and question text only at DEBUG.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

SERVICE = "mimivibe"
NAMESPACE = "MimiVibe"

# Metric names (CloudWatch namespace MimiVibe, dimension `service` always set).
READINGS_CREATED = "ReadingsCreated"
READINGS_COMPLETED = "ReadingsCompleted"
READING_RETRIES = "ReadingRetries"
DEAD_LETTERS = "DeadLetters"
JOBS_RECLAIMED = "JobsReclaimed"
WEBHOOK_EVENTS = "WebhookEvents"
STARS_CREDITED = "StarsCredited"
STARS_SPENT = "StarsSpent"
QUEUE_DEPTH = "QueueDepth"
QUEUE_LAG = "QueueLagSeconds"
RETRIES_DUE = "RetriesDue"
DEAD_LETTERED_JOBS = "DeadLetteredJobs"

_REDACTED = "[redacted]"
# Keys whose values are never logged, whatever the level.
_SECRET_KEY = re.compile(
    r"(token|secret|password|authorization|api_?key|signature|cookie|card_?number|cvc|cvv|pan)",
    re.IGNORECASE,
)
# Keys whose values (user-written text) appear only at DEBUG.
_PRIVATE_TEXT_KEYS = frozenset({"question", "question_text", "prompt", "body"})
_SECRET_PATTERNS = (
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),  # JWTs
    re.compile(r"(?i)\bbearer\s+[^\s\"',]+"),
    re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+"),  # Stripe secret/restricted keys
    re.compile(r"\bwhsec_[A-Za-z0-9]+"),  # Stripe webhook secrets
    re.compile(r"\b(?:pi|seti)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+"),  # client secrets
    re.compile(r"\b(?:sig|key)_[A-Za-z0-9]{16,}"),  # QStash signing keys
    re.compile(r"\b\d(?:[ -]?\d){12,18}\b"),  # card numbers (13-19 digits)
)
# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact_text(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(_REDACTED, text)
    return text


def _redact_value(key: str, value: Any, level: int) -> Any:
    if _SECRET_KEY.search(key):
        return _REDACTED
    if key.lower() in _PRIVATE_TEXT_KEYS and level >= logging.INFO:
        return _REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): _redact_value(str(k), v, level) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v, level) for v in value]
    return value


class RedactionFilter(logging.Filter):
    """Scrubs a record in place before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        for key in list(vars(record)):
            if key not in _RECORD_ATTRIBUTES:
                setattr(record, key, _redact_value(key, getattr(record, key), record.levelno))
        return True


class _Logging:
    """The Powertools Logger of this container, created on first use."""

    def __init__(self) -> None:
        self.logger: Any = None

    def configure(self, stream: IO[str] | None = None) -> Any:
        if self.logger is None:
            from aws_lambda_powertools import Logger

            # The stdlib logger underneath is named "mimivibe": every "mimivibe.*" logger of
            # shared/ propagates into its JSON handler.
            self.logger = Logger(service=SERVICE, stream=stream or sys.stdout)
            self.logger.registered_handler.addFilter(RedactionFilter())
        elif stream is not None:
            self.logger.registered_handler.setStream(stream)
        return self.logger

    def get(self) -> Any:
        return self.logger if self.logger is not None else self.configure()


_logging = _Logging()


def get_logger() -> Any:
    """The Powertools Logger (JSON lines on stdout, redacted)."""
    return _logging.get()


def configure_logging(stream: IO[str] | None = None) -> Any:
    """(Re)build the logger, writing to `stream` (tests pass a buffer)."""
    return _logging.configure(stream)


def bind(**keys: Any) -> None:
    """Add keys (for example `user_id`) to every log line of the current invocation."""
    # Context-local keys: the local function-URL server runs invocations concurrently.
    get_logger().thread_safe_append_keys(**{k: str(v) for k, v in keys.items() if v is not None})


Dimensions = Mapping[str, str]


_Pending = list[tuple[str, float, str, dict[str, str]]]


class Metrics:
    """Metrics of one invocation, flushed as EMF blobs (one per distinct dimension set).

    The buffer is context-local, so concurrent invocations (the local function-URL server runs
    them in threads) never flush each other's metrics.
    """

    def __init__(self, sink: Callable[[str], None] | None = None) -> None:
        self._sink = sink
        self._buffer: ContextVar[_Pending | None] = ContextVar("mimivibe_metrics", default=None)

    @property
    def _pending(self) -> _Pending:
        pending = self._buffer.get()
        if pending is None:
            pending = []
            self._buffer.set(pending)
        return pending

    def add(
        self, name: str, value: float = 1, unit: str = "Count",
        dimensions: Dimensions | None = None,
    ) -> None:
        self._pending.append((name, float(value), unit, {k: str(v) for k, v in (dimensions or {}).items()}))

    def pending(self) -> list[tuple[str, float, str, dict[str, str]]]:
        return list(self._pending)

    def use_sink(self, sink: Callable[[str], None] | None) -> None:
        self._sink = sink

    def clear(self) -> None:
        self._buffer.set([])

    def flush(self, function: str | None = None) -> list[dict[str, Any]]:
        """Emit and forget the recorded metrics; returns the EMF documents written."""
        if not self._pending:
            return []
        from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
            AmazonCloudWatchEMFProvider,
        )

        groups: dict[tuple[tuple[str, str], ...], list[tuple[str, float, str]]] = {}
        for name, value, unit, dims in self._pending:
            full = {"function": function, **dims} if function else dims
            groups.setdefault(tuple(sorted(full.items())), []).append((name, value, unit))
        self._pending.clear()
        documents = []
        for dims_key, entries in groups.items():
            provider = AmazonCloudWatchEMFProvider(namespace=NAMESPACE, service=SERVICE)
            for name, value, unit in entries:
                provider.add_metric(name=name, unit=unit, value=value)
            for key, dim in dims_key:
                provider.add_dimension(name=key, value=dim)
            document = dict(provider.serialize_metric_set())
            documents.append(document)
            line = json.dumps(document, separators=(",", ":"))
            if self._sink is not None:
                self._sink(line)
            else:
                print(line, flush=True)  # CloudWatch reads EMF from stdout
        return documents


metrics = Metrics()


def add_metric(
    name: str, value: float = 1, unit: str = "Count", dimensions: Dimensions | None = None
) -> None:
    """Shorthand for `metrics.add(...)`."""
    metrics.add(name, value, unit, dimensions)


def record_queue_health(health: Mapping[str, Any]) -> None:
    """Metrics from one `queue_health()` row (the job consumer records them every run)."""
    for key, name, unit in (("depth", QUEUE_DEPTH, "Count"),
                            ("oldest_queued_age_seconds", QUEUE_LAG, "Seconds"),
                            ("retries_due", RETRIES_DUE, "Count"),
                            ("dead_letters", DEAD_LETTERED_JOBS, "Count")):
        value = health.get(key)
        if isinstance(value, int | float):
            metrics.add(name, value, unit)


def _json(body: Any) -> Any:
    if not isinstance(body, str | bytes) or not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _create_reading(status: int, request_body: bytes, response_body: Any) -> None:
    body = _json(response_body)
    # 202 is the first response; a replayed key returns the same 202 but no second effect,
    # so only the SQL-side count is exact. The response is what we have without a DB call.
    if status == 202 and isinstance(body, dict):
        metrics.add(READINGS_CREATED, 1)
        if isinstance(body.get("cost_stars"), int):
            metrics.add(STARS_SPENT, body["cost_stars"])


def _job_consumer(status: int, request_body: bytes, response_body: Any) -> None:
    body = _json(response_body)
    if status != 200 or not isinstance(body, dict):
        return
    for key, name in (("succeeded", READINGS_COMPLETED), ("retried", READING_RETRIES),
                      ("dead_lettered", DEAD_LETTERS), ("reclaimed", JOBS_RECLAIMED)):
        if isinstance(body.get(key), int):
            metrics.add(name, body[key])


def _stripe_webhook(status: int, request_body: bytes, response_body: Any) -> None:
    body = _json(response_body)
    event = _json(request_body)
    if status == 200:
        outcome = "duplicate" if isinstance(body, dict) and body.get("duplicate") else "applied"
    elif status < 500:
        outcome = "rejected"
    else:
        outcome = "failed"
    # The type of a rejected (unverified) request is not trusted as a dimension value.
    event_type = event.get("type") if isinstance(event, dict) and status == 200 else None
    metrics.add(WEBHOOK_EVENTS, 1, dimensions={
        "event_type": str(event_type)[:64] if event_type else "unverified",
        "outcome": outcome,
    })


RESPONSE_METRICS: dict[str, Callable[[int, bytes, Any], None]] = {
    "create-reading": _create_reading,
    "job-consumer": _job_consumer,
    "stripe-webhook": _stripe_webhook,
}


class Invocation:
    """State of one handler invocation (opened by `shared.http.adapter`)."""

    def __init__(self, function: str, request_id: str) -> None:
        self.function = function
        self.request_id = request_id
        self.started = time.perf_counter()
        self.method: str | None = None
        self.path: str | None = None

    def bind_request(self, request_id: str, method: str, path: str) -> None:
        self.request_id, self.method, self.path = request_id, method, path
        bind(request_id=request_id)

    def finish(self, status: int, request_body: bytes = b"", response_body: Any = None) -> None:
        observer = RESPONSE_METRICS.get(self.function)
        if observer is not None:
            try:
                observer(status, request_body, response_body)
            except Exception:  # a metric must never fail a request
                get_logger().exception("metrics derivation failed")
        duration_ms = round((time.perf_counter() - self.started) * 1000, 1)
        log = get_logger()
        level = logging.ERROR if status >= 500 else logging.INFO
        log.log(level, "request completed", extra={
            "status": status, "duration_ms": duration_ms, "method": self.method,
            "path": self.path,
        })
        try:
            metrics.flush(self.function)
        except Exception:
            log.exception("metrics flush failed")


_cold = True


@contextmanager
def invocation(function: str, request_id: str) -> Iterator[Invocation]:
    """Open the log context of one invocation; the caller calls `finish` with the status."""
    global _cold
    log = get_logger()
    # Keys of the previous invocation (user_id) must not leak into this one.
    log.thread_safe_clear_keys()
    log.thread_safe_append_keys(function=function, request_id=request_id, cold_start=_cold)
    _cold = False
    metrics.clear()
    yield Invocation(function, request_id)
