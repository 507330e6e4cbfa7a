"""Journey logging: everything to the log file, one line per function invocation on screen."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from devstack.logs import to_file
from shared.observability import get_logger, metrics


def test_journey_logs_go_to_the_file_and_only_invocation_lines_to_the_console(
        tmp_path: Path) -> None:
    console = io.StringIO()
    log_file = tmp_path / "local" / "journey.log"
    with to_file(log_file, console=console):
        logging.getLogger("devstack.stack").info("postgres up")
        logging.getLogger("stripe").info("Request to Stripe api")
        get_logger().info("request completed")
        metrics.add("ReadingsCreated")
        metrics.flush("create-reading")
        logging.getLogger("devstack.functions").info("session POST / -> 200 3.1 ms")
    assert console.getvalue() == "    > session POST / -> 200 3.1 ms\n"
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert any(line.endswith("postgres up") for line in lines)
    assert any(line.endswith("Request to Stripe api") for line in lines)
    assert any(line.endswith("session POST / -> 200 3.1 ms") for line in lines)
    documents = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(d.get("message") == "request completed" for d in documents)
    assert any("ReadingsCreated" in d and d["function"] == "create-reading" for d in documents)


def test_logging_is_restored_after_the_journey(tmp_path: Path) -> None:
    log_file = tmp_path / "journey.log"
    root = logging.getLogger()
    handlers = list(root.handlers)
    with to_file(log_file, console=io.StringIO()):
        pass
    logging.getLogger("devstack.stack").info("after the journey")
    assert root.handlers == handlers
    assert "after the journey" not in log_file.read_text(encoding="utf-8")
