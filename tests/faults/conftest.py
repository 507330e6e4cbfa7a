"""One local stack for the whole fault-injection suite (its own PostgreSQL and Redis, so that
stopping them disturbs no other test); every test leaves it healthy and consistent."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.faults.stack import FaultStack, start
from tests.support.stack import reset_containers


@pytest.fixture(scope="package")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    reset_containers()
    stack, signing_key = start(tmp_path_factory.mktemp("faults"))
    try:
        with httpx.Client(timeout=30) as http:
            yield FaultStack(stack, http, signing_key)
    finally:
        stack.stop()
        reset_containers()


@pytest.fixture
def healthy(faults: FaultStack) -> Iterator[FaultStack]:
    """The stack, checked consistent after the test's fault is over."""
    yield faults
    faults.converge()
    faults.assert_consistent()
