"""One local stack for the whole fault-injection suite (its own PostgreSQL and Redis, so that
stopping them disturbs no other test); every test leaves it healthy and consistent."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.faults.stack import FaultStack, start
from tests.support.stack import reset_containers


@pytest.fixture(scope="package")
def faults() -> Iterator[FaultStack]:
    # Not under pytest's base temp: PostgreSQL runs as its own user when tests run as root, and
    # needs a path that no other pytest session prunes or locks down meanwhile.
    root = Path(tempfile.mkdtemp(prefix="mimivibe-faults-"))
    reset_containers()
    try:
        stack, signing_key = start(root)
        try:
            with httpx.Client(timeout=30) as http:
                yield FaultStack(stack, http, signing_key)
        finally:
            stack.stop()
            reset_containers()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def healthy(faults: FaultStack) -> Iterator[FaultStack]:
    """The stack, checked consistent after the test's fault is over."""
    yield faults
    faults.converge()
    faults.assert_consistent()
