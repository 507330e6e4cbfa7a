"""One handler invocation: its log context, its `request completed` line and its metrics flush."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from shared.observability.emf import metrics
from shared.observability.logs import bind, get_logger


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

    def finish(self, status: int) -> None:
        duration_ms = round((time.perf_counter() - self.started) * 1000, 1)
        log = get_logger()
        level = logging.ERROR if status >= 500 else logging.INFO
        log.log(level, "request completed", extra={
            "status": status, "duration_ms": duration_ms, "method": self.method,
            "path": self.path,
        })
        try:
            metrics.flush(self.function)
        except Exception:  # a metric must never fail a request
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
