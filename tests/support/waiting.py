"""Waiting for a condition with a deadline, never for a fixed time (a slow machine stays green)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(probe: Callable[[], T], until: Callable[[T], object] = bool, *,
             timeout: float = 5.0, interval: float = 0.02) -> T:
    """Call `probe` until `until(result)` holds and return that result; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last result: {result!r}")
        time.sleep(interval)
