"""Pipeline failures, split by what the job consumer should do with them.

`retryable` is the one thing the consumer reads: True → back off and try the job again,
False → the attempt can never succeed (count it towards dead-lettering at once).
"""

from __future__ import annotations

from typing import ClassVar


class PipelineError(Exception):
    retryable: ClassVar[bool] = False


class RetryableProviderError(PipelineError):
    """Timeouts, connection failures, 429 and 5xx: the same call may succeed later."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentProviderError(PipelineError):
    """Bad credentials, rejected requests, or output that stayed invalid after a re-ask."""


class InvalidPipelineInput(PipelineError, ValueError):
    """The job's cards do not fit the deck or the spread; retrying cannot fix that."""
