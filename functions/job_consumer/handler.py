"""POST /job-consumer: called by QStash (schedule or wake-up) to drain the reading queue, or
(body `{"task": "reconcile"}`, an hourly schedule) to reconcile recent payments with Stripe, or
(body `{"task": "expire_invites"}`, a schedule of its own) to expire pending invites."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from shared.bootstrap import services
from shared.edge import ANY_PATH, Call, Endpoint, serve
from shared.http import FunctionUrlRequest, Response, json_response

if TYPE_CHECKING:
    from shared.consumer import ConsumeRequest


def consumer_url(request: FunctionUrlRequest) -> str:
    """The URL QStash was asked to call: configured, else this function URL's own address."""
    from shared.settings import get_settings

    configured = get_settings().job_consumer_url
    if configured:
        return configured
    proto = request.header("x-forwarded-proto") or "https"
    return f"{proto}://{request.header('host')}{request.raw_path}"


def consume(call: Call[ConsumeRequest]) -> Response:
    request, body = call.request, call.body
    if body.task == "reconcile":
        # The scheduled reconciliation with Stripe rides on this signed, scheduled endpoint.
        since = int(time.time()) - body.since_hours * 3600
        return json_response(200, services().reconciler.run(since=since))
    if body.task == "expire_invites":
        return json_response(200, services().invites.expire_pending())
    from shared.consumer_config import FUNCTION_TIMEOUT_SECONDS

    # Without a Lambda context (a local call), the budget is the function's timeout.
    deadline = request.deadline or time.monotonic() + FUNCTION_TIMEOUT_SECONDS
    report = services().job_consumer.run(deadline=deadline, max_jobs=body.max_jobs)
    return json_response(200, report)


def verify_signature(request: FunctionUrlRequest) -> None:
    services().qstash_verifier.verify(request.header("upstash-signature"), request.body,
                                      consumer_url(request))


handler = serve(
    Endpoint("POST", ANY_PATH, consume, verify=verify_signature, body="shared.consumer:ConsumeRequest",
             allow_empty_body=True),
    function="job-consumer")
