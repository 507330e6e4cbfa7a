"""Structured JSON logs and CloudWatch embedded-metric-format (EMF) metrics, via Powertools.

Every handler goes through `shared.http.adapter`, which opens an invocation here: the log
context carries `request_id` and `function` (and `user_id` once `bind(user_id=...)` is called),
one `request completed` line is written per invocation, and the metrics recorded during it are
flushed as EMF blobs on stdout (CloudWatch turns them into metrics; no API call is made).

- `redaction`: what never reaches a log line (tokens, secrets, card details; question text
  above DEBUG).
- `logs`: the container's Powertools Logger.
- `emf`: metric names, the per-invocation buffer, and the `record_*` helpers the use cases call
  where an effect is known (a create-reading replay, a duplicate or ignored webhook event).
- `invocation`: the adapter's per-invocation context.

Powertools is imported on first use, not at import time, so importing a handler stays cheap
(measured by `python -m benchmarks.handler_imports`).
"""

from shared.observability.emf import (
    DEAD_LETTERED_JOBS,
    DEAD_LETTERS,
    NAMESPACE,
    QUEUE_DEPTH,
    QUEUE_LAG,
    READING_RETRIES,
    READINGS_COMPLETED,
    READINGS_CREATED,
    RECONCILIATION_APPLIED,
    RECONCILIATION_DRIFT,
    RETRIES_DUE,
    ROLLUP_DIMENSIONS,
    STARS_CLAWED_BACK,
    STARS_CREDITED,
    STARS_SPENT,
    UNVERIFIED_EVENT_TYPE,
    WEBHOOK_EVENTS,
    Metrics,
    WebhookOutcome,
    add_metric,
    metrics,
    record_consumer_run,
    record_queue_health,
    record_reading_created,
    record_reconciliation,
    record_stars_moved,
    record_webhook_event,
)
from shared.observability.invocation import Invocation, invocation
from shared.observability.logs import SERVICE, bind, configure_logging, get_logger
from shared.observability.redaction import RedactionFilter, redact_text

__all__ = [
    "DEAD_LETTERED_JOBS", "DEAD_LETTERS", "NAMESPACE", "QUEUE_DEPTH",
    "QUEUE_LAG", "READINGS_COMPLETED", "READINGS_CREATED", "READING_RETRIES",
    "RECONCILIATION_APPLIED", "RECONCILIATION_DRIFT", "RETRIES_DUE", "ROLLUP_DIMENSIONS",
    "SERVICE", "STARS_CLAWED_BACK", "STARS_CREDITED", "STARS_SPENT", "UNVERIFIED_EVENT_TYPE",
    "WEBHOOK_EVENTS", "Invocation", "Metrics", "RedactionFilter", "WebhookOutcome",
    "add_metric", "bind", "configure_logging", "get_logger", "invocation", "metrics",
    "record_consumer_run", "record_queue_health", "record_reading_created",
    "record_reconciliation",
    "record_stars_moved", "record_webhook_event", "redact_text",
]
