"""CloudWatch embedded-metric-format (EMF) metrics, recorded by the use cases where an effect is
known and flushed once per invocation by `shared.http.adapter`.

Effects are counted where they happen, never derived from a response: a create-reading replay
returns the same 202 as the first call but spent nothing, so only the use case (which sees the
SQL function's `replayed` flag) can count it right.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, Literal

from shared.observability.logs import SERVICE

NAMESPACE = "MimiVibe"

# Metric names (CloudWatch namespace MimiVibe; dimensions `service` and `function` always set).
READINGS_CREATED = "ReadingsCreated"
READINGS_COMPLETED = "ReadingsCompleted"
READING_RETRIES = "ReadingRetries"
DEAD_LETTERS = "DeadLetters"
WEBHOOK_EVENTS = "WebhookEvents"
STARS_CREDITED = "StarsCredited"
STARS_CLAWED_BACK = "StarsClawedBack"
STARS_SPENT = "StarsSpent"
QUEUE_DEPTH = "QueueDepth"
QUEUE_LAG = "QueueLagSeconds"
RETRIES_DUE = "RetriesDue"
DEAD_LETTERED_JOBS = "DeadLetteredJobs"
RECONCILIATION_DRIFT = "ReconciliationDrift"
RECONCILIATION_APPLIED = "ReconciliationApplied"

# Besides its full dimension set, every metric is also published by `service` alone and by
# `service` with each of these dimensions it carries: the service-wide series alarms and the
# dashboard read, whichever function emitted them (CloudWatch matches dimensions exactly).
ROLLUP_DIMENSIONS = ("outcome",)

# `outcome` of WebhookEvents: applied (its effect committed), duplicate (event id seen before),
# ignored (a type we do not handle, acknowledged), rejected (bad signature or payload, 400),
# failed (processing raised: 5xx, Stripe retries).
WebhookOutcome = Literal["applied", "duplicate", "ignored", "rejected", "failed"]
# The event type of a request whose signature did not verify is not trusted as a dimension.
UNVERIFIED_EVENT_TYPE = "unverified"

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
        dims = {k: str(v) for k, v in (dimensions or {}).items()}
        self._pending.append((name, float(value), unit, dims))

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
            document: dict[str, Any] = dict(provider.serialize_metric_set())
            directive: dict[str, Any] = document["_aws"]["CloudWatchMetrics"][0]
            keys = directive["Dimensions"][0]
            if "service" in keys:
                directive["Dimensions"] += [["service"]] + [
                    ["service", key] for key in ROLLUP_DIMENSIONS if key in keys]
            documents.append(document)
            line = json.dumps(document, separators=(",", ":"))
            if self._sink is not None:
                self._sink(line)
            else:
                # CloudWatch reads EMF documents from the function's stdout.
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
        return documents


metrics = Metrics()


def add_metric(
    name: str, value: float = 1, unit: str = "Count", dimensions: Dimensions | None = None
) -> None:
    """Shorthand for `metrics.add(...)`."""
    metrics.add(name, value, unit, dimensions)


def record_reading_created(cost_stars: int) -> None:
    """A new reading job was charged (never called for a replayed Idempotency-Key)."""
    metrics.add(READINGS_CREATED, 1)
    metrics.add(STARS_SPENT, cost_stars)


def record_consumer_run(succeeded: int, retried: int, dead_lettered: int) -> None:
    """What one job-consumer invocation did."""
    for name, value in ((READINGS_COMPLETED, succeeded), (READING_RETRIES, retried),
                        (DEAD_LETTERS, dead_lettered)):
        metrics.add(name, value)


def record_webhook_event(event_type: str | None, outcome: WebhookOutcome) -> None:
    """One Stripe webhook delivery, by (verified) event type and outcome."""
    metrics.add(WEBHOOK_EVENTS, 1, dimensions={
        "event_type": (event_type or UNVERIFIED_EVENT_TYPE)[:64], "outcome": outcome,
    })


def record_stars_moved(credited: int, clawed_back: int) -> None:
    """Stars a payment event credited or took back (refunds, lost disputes)."""
    if credited:
        metrics.add(STARS_CREDITED, credited)
    if clawed_back:
        metrics.add(STARS_CLAWED_BACK, clawed_back)


def record_reconciliation(drift: int, applied: int) -> None:
    """One reconciliation with Stripe: objects the database did not reflect, events applied."""
    metrics.add(RECONCILIATION_DRIFT, drift)
    metrics.add(RECONCILIATION_APPLIED, applied)


def record_queue_health(health: Mapping[str, Any]) -> None:
    """Metrics from one `queue_health()` row (the job consumer records them every run)."""
    for key, name, unit in (("depth", QUEUE_DEPTH, "Count"),
                            ("oldest_queued_age_seconds", QUEUE_LAG, "Seconds"),
                            ("retries_due", RETRIES_DUE, "Count"),
                            ("dead_letters", DEAD_LETTERED_JOBS, "Count")):
        value = health.get(key)
        if isinstance(value, int | float):
            metrics.add(name, value, unit)
