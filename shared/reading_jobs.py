"""The consumer's exchange with `claim_reading_jobs` and `finish_reading_jobs`, typed.

SQL decides every outcome (supabase/migrations, the job consumer functions); these models are
the shapes it answers with and the attempt results it is sent, so an outcome the consumer does
not know is an error at the boundary instead of a silently ignored string.
`tests/readings/test_reading_jobs.py` reads the outcomes from the migrations and ties them to
the `Literal`s below.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

ClaimOutcome = Literal["claimed", "done", "busy", "not_due", "missing", "dead_lettered"]
FinishOutcome = Literal["succeeded", "refused", "retry", "dead_lettered", "stale"]


class _Answer(BaseModel):
    # SQL may add fields; the consumer reads only these.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class Claim(_Answer):
    """One element of `claim_reading_jobs`: `claimed` carries the attempt and the payload,
    `dead_lettered` the dead-letter fields."""

    job_id: str
    outcome: ClaimOutcome
    attempt: int | None = None
    user_id: str | None = None
    payload: dict[str, Any] | None = None
    attempts: int | None = None
    error: str | None = None
    error_code: str | None = None


class Finished(_Answer):
    """One element of `finish_reading_jobs`."""

    job_id: str
    outcome: FinishOutcome
    reading_id: str | None = None
    next_retry_at: str | None = None
    user_id: str | None = None
    attempts: int | None = None
    error: str | None = None
    error_code: str | None = None


def dead_letter_entry(answer: Claim | Finished) -> dict[str, Any]:
    """What the dead-letter stream keeps of a dead-lettered job."""
    return {"job_id": answer.job_id, "user_id": answer.user_id, "attempts": answer.attempts,
            "error_code": answer.error_code, "error": answer.error}


class _Attempt(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    job_id: str
    attempt: int


class _Produced(_Attempt):
    prompt_version: str
    schema_version: str
    processing_time_ms: int


class ReadingResult(_Produced):
    kind: Literal["reading"] = "reading"
    question_analysis: dict[str, Any]
    tarot_reading: dict[str, Any]


class RefusalResult(_Produced):
    kind: Literal["refusal"] = "refusal"
    refusal: dict[str, Any]


class ErrorResult(_Attempt):
    kind: Literal["error"] = "error"
    error: str
    error_code: str
    retryable: bool


AttemptResult = ReadingResult | RefusalResult | ErrorResult
