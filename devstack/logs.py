"""Where the local stack's logs go.

`make dev` streams everything to the terminal (`to_terminal`). `make journey` keeps its terminal
for the journey's own steps: `to_file` sends the stack's and the libraries' log lines, the
functions' JSON log lines and their EMF metric lines to one file, and lets through only the
function-URL server's one line per invocation.
"""

from __future__ import annotations

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


def to_terminal(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=FORMAT, datefmt=DATE_FORMAT, stream=sys.stdout)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)


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
