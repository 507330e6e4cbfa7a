"""One local stack for the whole fault-injection suite (its own PostgreSQL and Redis, so that
stopping them disturbs no other test); every test leaves it healthy and consistent."""

from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared import observability
from tests.faults.stack import QUESTION_WORDS, FaultStack, start
from tests.support.stack import reset_containers


class Tee(io.StringIO):
    """The functions' log lines, kept for the checks and still shown on stdout."""

    def write(self, text: str) -> int:
        sys.stdout.write(text)
        return super().write(text)


@pytest.fixture(scope="package")
def logs() -> Iterator[Tee]:
    tee = Tee()
    observability.configure_logging(tee)
    yield tee
    observability.configure_logging(sys.stdout)


@pytest.fixture(scope="package")
def faults(logs: Tee) -> Iterator[FaultStack]:
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
def healthy(faults: FaultStack, logs: Tee) -> Iterator[FaultStack]:
    """The stack, checked consistent after the test's fault is over, and no word of a question
    in any log line at INFO or above while the fault lasted (warnings, errors, tracebacks)."""
    start = len(logs.getvalue())
    yield faults
    faults.converge()
    faults.assert_consistent()
    lines = [json.loads(line) for line in logs.getvalue()[start:].splitlines()
             if line.startswith("{") and '"level"' in line]
    assert lines, "the functions logged nothing: the check below would prove nothing"
    leaked = [line for line in lines if line["level"] != "DEBUG"
              and any(word in json.dumps(line, ensure_ascii=False) for word in QUESTION_WORDS)]
    assert leaked == []
