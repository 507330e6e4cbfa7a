"""The container's Powertools Logger: JSON lines on stdout through the redaction filter."""

from __future__ import annotations

import sys
from typing import IO, Any

from shared.observability.redaction import RedactionFilter

SERVICE = "mimivibe"


class _Logging:
    """The Powertools Logger of this container, created on first use."""

    def __init__(self) -> None:
        self.logger: Any = None

    def configure(self, stream: IO[str] | None = None) -> Any:
        if self.logger is None:
            from aws_lambda_powertools import Logger

            # The stdlib logger underneath is named "mimivibe": every "mimivibe.*" logger of
            # shared/ propagates into its JSON handler.
            self.logger = Logger(service=SERVICE, stream=stream or sys.stdout)
            self.logger.registered_handler.addFilter(RedactionFilter())
        elif stream is not None:
            self.logger.registered_handler.setStream(stream)
        return self.logger

    def get(self) -> Any:
        return self.logger if self.logger is not None else self.configure()


_logging = _Logging()


def get_logger() -> Any:
    """The Powertools Logger (JSON lines on stdout, redacted)."""
    return _logging.get()


def configure_logging(stream: IO[str] | None = None) -> Any:
    """(Re)build the logger, writing to `stream` (tests pass a buffer)."""
    return _logging.configure(stream)


def bind(**keys: Any) -> None:
    """Add keys (for example `user_id`) to every log line of the current invocation."""
    # Context-local keys: the local function-URL server runs invocations concurrently.
    get_logger().thread_safe_append_keys(**{k: str(v) for k, v in keys.items() if v is not None})
