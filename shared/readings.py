"""The `create-reading` use case: charge stars and enqueue a reading job, once per key.

Everything that must be atomic (the idempotency key, the cap of open readings, the price, the
card draw, the charge and the job row) happens in one SQL function, `public.create_reading_job`,
granted to service_role only; the caller's id comes from the verified access token. After that
transaction committed, the job's doorbell is rung on the Redis stream and QStash is asked to
wake the consumer. Both are best effort and tell SQL nothing: when Redis or QStash cannot be
reached the request still succeeds, and the consumer's sweep (on its schedule) rings every job
no consumer claimed within its grace (docs/DESIGN.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared import idempotency, observability
from shared.errors import AppError
from shared.request_model import RequestModel
from shared.rules import MAX_QUESTION_CHARS, CardCount

if TYPE_CHECKING:
    from shared.access_tokens import AuthenticatedUser
    from shared.db import Database
    from shared.qstash_client import ConsumerWaker
    from shared.queue import ReadingQueue

logger = logging.getLogger("mimivibe.readings")

CREATE_FUNCTION = "create_reading_job"


class CreateReadingRequest(RequestModel):
    question: str = Field(max_length=4 * MAX_QUESTION_CHARS)
    card_count: CardCount
    locale: Literal["th", "en"] = "th"

    @field_validator("question")
    @classmethod
    def _trimmed_length(cls, value: str) -> str:
        value = value.strip()
        if not 1 <= len(value) <= MAX_QUESTION_CHARS:
            raise ValueError(f"the question must be 1 to {MAX_QUESTION_CHARS} characters long")
        return value

    def request_hash(self) -> str:
        """What "the same body" means for a replay: the validated request, canonically."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


class DrawnCardOut(BaseModel):
    model_config = ConfigDict(defer_build=True)

    position: int
    card_id: str
    name: str
    orientation: Literal["upright", "reversed"]


class CreateReadingResponse(BaseModel):
    model_config = ConfigDict(defer_build=True)

    job_id: uuid.UUID
    status: str
    cost_stars: int
    star_balance: int
    cards: list[DrawnCardOut]


def check_idempotency_key(value: str | None) -> str:
    """create-reading requires a key (shared/idempotency.py states the rule)."""
    return idempotency.required_key(value)


class ReadingService:
    def __init__(
        self,
        *,
        database: Database,
        queue: ReadingQueue | None,
        waker: ConsumerWaker | None,
        max_pending: int,
    ) -> None:
        self._database = database
        self._queue = queue
        self._waker = waker
        self._max_pending = max_pending

    def create(
        self, user: AuthenticatedUser, idempotency_key: str, request: CreateReadingRequest
    ) -> CreateReadingResponse:
        from shared.db import execute

        key = check_idempotency_key(idempotency_key)
        params: dict[str, Any] = {
            "p_user_id": str(user.user_id),
            "p_idempotency_key": key,
            "p_request_hash": request.request_hash(),
            "p_question": request.question,
            "p_card_count": request.card_count,
            "p_locale": request.locale,
            "p_max_pending": self._max_pending,
        }
        data = execute(self._database.service.rpc(CREATE_FUNCTION, params)).data
        if not isinstance(data, dict):
            raise AppError("Creating the reading returned no job.")
        response = CreateReadingResponse.model_validate(data)
        if not data.get("replayed"):
            # Only the first call charged: a replay returns the same 202 and counts nothing.
            observability.record_reading_created(response.cost_stars)
            self._deliver(str(response.job_id))
        return response

    def _deliver(self, job_id: str) -> None:
        """Ring the job's doorbell and wake the consumer; failures are logged, never raised."""
        if self._queue is not None:
            try:
                self._queue.enqueue([job_id])
            except Exception as exc:
                logger.warning("job %s not rung (the sweep will): %s", job_id,
                               type(exc).__name__)
        if self._waker is not None:
            try:
                self._waker.wake(f"reading-{job_id}")
            except Exception as exc:
                logger.warning("consumer not woken for job %s: %s", job_id, type(exc).__name__)
