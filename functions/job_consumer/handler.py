"""POST /job-consumer: called by QStash (schedule or wake-up) to drain the reading queue, or
(body `{"task": "reconcile"}`, an hourly schedule) to reconcile recent payments with Stripe."""

from __future__ import annotations

import time
from typing import Any

from shared.consumer import ConsumeRequest, get_job_consumer
from shared.consumer_config import FUNCTION_TIMEOUT_SECONDS
from shared.errors import MethodNotAllowed
from shared.http import FunctionUrlRequest, Response, adapter, json_response
from shared.qstash_client import get_verifier
from shared.settings import get_settings


def consumer_url(request: FunctionUrlRequest) -> str:
    """The URL QStash was asked to call: configured, else this function URL's own address."""
    configured = get_settings().job_consumer_url
    if configured:
        return configured
    proto = request.header("x-forwarded-proto") or "https"
    return f"{proto}://{request.header('host')}{request.raw_path}"


def route(request: FunctionUrlRequest, *, deadline: float) -> Response:
    if request.method != "POST":
        raise MethodNotAllowed()
    get_verifier().verify(request.header("upstash-signature"), request.body, consumer_url(request))
    body = request.json_body(ConsumeRequest, allow_empty=True)
    if body.task == "reconcile":
        # The scheduled reconciliation with Stripe rides on this signed, scheduled endpoint.
        from shared.reconciliation import get_reconciler

        since = int(time.time()) - body.since_hours * 3600
        return json_response(200, get_reconciler().run(since=since))
    report = get_job_consumer().run(deadline=deadline, max_jobs=body.max_jobs)
    return json_response(200, report)


def handler(event: dict[str, Any], context: Any) -> Response:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    budget = remaining() / 1000 if callable(remaining) else FUNCTION_TIMEOUT_SECONDS
    deadline = time.monotonic() + budget

    def bound(request: FunctionUrlRequest) -> Response:
        return route(request, deadline=deadline)

    return adapter(bound, function="job-consumer")(event, context)
