"""The typed exchange with claim_reading_jobs and finish_reading_jobs (shared/reading_jobs.py):
the outcomes the consumer knows are the ones the latest migrations answer with."""

from __future__ import annotations

import re
from typing import get_args

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.reading_jobs import (
    Claim,
    ClaimOutcome,
    ErrorResult,
    Finished,
    FinishOutcome,
    ReadingResult,
    dead_letter_entry,
)
from tests.db.test_rules_agree import latest


def outcomes(body: str) -> set[str]:
    """Every outcome a function's body writes: literal ones, the two arms of a `case`, and the
    dead-letter helper's."""
    found = set(re.findall(r"'outcome',\s*'(\w+)'", body))
    for arms in re.findall(r"'outcome',\s*case\s+when.*?then\s+'(\w+)'\s+else\s+'(\w+)'", body,
                           re.S):
        found |= set(arms)
    if re.search(r"\|\|\s*private\.dead_letter_reading_job\(", body):
        found |= outcomes(latest("function", "private.dead_letter_reading_job"))
    return found


def test_the_claim_outcomes_are_the_ones_claim_reading_jobs_answers_with():
    assert outcomes(latest("function", "public.claim_reading_jobs")) == set(get_args(ClaimOutcome))


def test_the_finish_outcomes_are_the_ones_finish_reading_jobs_answers_with():
    assert outcomes(latest("function", "public.finish_reading_jobs")) == \
        set(get_args(FinishOutcome))


def test_an_outcome_the_consumer_does_not_know_is_refused_at_the_boundary():
    with pytest.raises(ValidationError):
        TypeAdapter(list[Claim]).validate_python([{"job_id": "j", "outcome": "teleported"}])
    with pytest.raises(ValidationError):
        Finished.model_validate({"job_id": "j", "outcome": "claimed"})


def test_a_dead_lettered_answer_becomes_the_dead_letter_entry():
    answer = Finished.model_validate({"job_id": "j", "outcome": "dead_lettered", "user_id": "u",
                                      "attempts": 3, "error": "boom", "error_code": "x",
                                      "extra": "ignored"})
    assert dead_letter_entry(answer) == {"job_id": "j", "user_id": "u", "attempts": 3,
                                         "error_code": "x", "error": "boom"}


def test_attempt_results_are_sent_with_their_kind():
    error = ErrorResult(job_id="j", attempt=2, error="e", error_code="c", retryable=False)
    assert error.model_dump(mode="json") == {"job_id": "j", "attempt": 2, "kind": "error",
                                             "error": "e", "error_code": "c",
                                             "retryable": False}
    reading = ReadingResult(job_id="j", attempt=1, prompt_version="p", schema_version="s",
                            processing_time_ms=5, question_analysis={}, tarot_reading={})
    assert reading.model_dump(mode="json")["kind"] == "reading"
