"""Where the local stack's logs go.

Everything goes to a log file: the stack's and the libraries' log lines (the HTTP clients' line
per request only when verbose), the functions' JSON log lines and their EMF metric lines. The
terminal gets less:

- `make dev` (`to_terminal`): the stack's own lines, one line per function invocation, warnings
  and errors from anywhere (also the functions' JSON lines at WARNING and above). A scheduled
  consumer run that found nothing to do is marked `idle` by the function-URL server and stays in
  the file, as do the functions' INFO lines and metrics; `verbose=True` shows everything.
- `make journey` (`to_file`): only the function-URL server's one line per invocation, so the
  terminal keeps the journey's own steps.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, cast

FORMAT = "%(asctime)s %(name)-22s %(message)s"
DATE_FORMAT = "%H:%M:%S"
INVOCATIONS = "devstack.functions"
# Client libraries log every request at INFO; the function-URL lines already say it.
NOISY = ("httpx", "httpcore", "uvicorn.error")


# The counters of the job consumer's report; a run where all are zero did no work.
CONSUMER_WORK = ("claimed", "succeeded", "retried", "dead_lettered", "requeued",
                 "expired_invites")


def idle_run(function: str, status: int, body: bytes) -> bool:
    """True for a job-consumer run that answered 200 and did nothing (an idle schedule tick)."""
    if function != "job-consumer" or status != 200:
        return False
    try:
        report = json.loads(body)
    except ValueError:
        return False
    return isinstance(report, dict) and all(report.get(k) == 0 for k in CONSUMER_WORK)


class _ForTerminal(logging.Filter):
    """Stack lines and invocations (not idle ones), and anything at WARNING or above."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return record.name.startswith("devstack.") and not getattr(record, "idle", False)


class _JsonLines:
    """The functions' JSON log and metric lines: all to the file, to the terminal only those at
    WARNING or above (every line when verbose)."""

    def __init__(self, file: _LockedLines, terminal: _LockedLines, verbose: bool) -> None:
        self.file, self.terminal, self.verbose = file, terminal, verbose

    def write(self, text: str) -> int:
        self.file.write(text)
        if self.verbose or _json_level(text) in ("WARNING", "ERROR", "CRITICAL"):
            self.terminal.write(text)
        return len(text)

    def flush(self) -> None:
        self.file.flush()

    def line(self, text: str) -> None:
        self.write(text + "\n")


def _json_level(text: str) -> str | None:
    try:
        document = json.loads(text)
    except ValueError:
        return None
    level = document.get("level") if isinstance(document, dict) else None
    return str(level).upper() if level else None


@contextmanager
def to_terminal(path: Path, *, verbose: bool = False, console: IO[str] | None = None
                ) -> Iterator[Path]:
    """`make dev`: everything to `path` (appended), the lines worth reading to `console`."""
    from shared.observability import configure_logging, metrics

    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    previous_level = root.level
    with path.open("a", encoding="utf-8") as stream:
        file_sink = _LockedLines(stream)
        terminal_sink = _LockedLines(console or sys.stdout)
        to_file_handler = logging.StreamHandler(file_sink)
        to_file_handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
        to_console = logging.StreamHandler(terminal_sink)
        if not verbose:
            to_console.addFilter(_ForTerminal())
        to_console.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
        root.addHandler(to_file_handler)
        root.addHandler(to_console)
        root.setLevel(logging.INFO)
        noisy_levels = {name: logging.getLogger(name).level for name in NOISY}
        for name in NOISY:  # verbose: also the HTTP clients' line per request
            logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
        logging.captureWarnings(True)
        json_lines = _JsonLines(file_sink, terminal_sink, verbose)
        configure_logging(cast(IO[str], json_lines))  # the handler only writes and flushes
        metrics.use_sink(json_lines.line if verbose else file_sink.line)
        try:
            yield path
        finally:
            for name, level in noisy_levels.items():
                logging.getLogger(name).setLevel(level)
            metrics.use_sink(None)
            configure_logging(sys.stdout)
            logging.captureWarnings(False)
            root.removeHandler(to_console)
            root.removeHandler(to_file_handler)
            root.setLevel(previous_level)


class _LockedLines:
    """One file shared by three writers (stdlib logging, the Powertools handler, the EMF sink),
    each from many threads: whole writes only."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            written = self._stream.write(text)
            self._stream.flush()
            return written

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()

    def line(self, text: str) -> None:
        self.write(text + "\n")


class _InvocationLine(logging.Formatter):
    """The invocation's one line, without a traceback (that is in the file)."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        return self.prefix + record.getMessage()


@contextmanager
def to_file(path: Path, *, console: IO[str] | None = None, prefix: str = "    > "
            ) -> Iterator[Path]:
    """Log to `path` (overwritten) for the duration; invocation lines also to `console`."""
    from shared.observability import configure_logging, metrics

    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    previous_level = root.level
    with path.open("w", encoding="utf-8") as stream:
        sink = _LockedLines(stream)
        to_file_handler = logging.StreamHandler(sink)
        to_file_handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
        to_console = logging.StreamHandler(console or sys.stdout)
        to_console.addFilter(logging.Filter(INVOCATIONS))
        to_console.setFormatter(_InvocationLine(prefix))
        root.addHandler(to_file_handler)
        root.addHandler(to_console)
        root.setLevel(logging.INFO)
        for name in NOISY:
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.captureWarnings(True)
        configure_logging(cast(IO[str], sink))  # the handler only writes and flushes
        metrics.use_sink(sink.line)
        try:
            yield path
        finally:
            metrics.use_sink(None)
            configure_logging(sys.stdout)
            logging.captureWarnings(False)
            root.removeHandler(to_console)
            root.removeHandler(to_file_handler)
            root.setLevel(previous_level)
