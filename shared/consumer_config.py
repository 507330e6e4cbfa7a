"""The job consumer's timing: how long a job may take, its lease, and the invocation's budget.

These numbers only work together. A reading makes at most `MAX_CALLS_PER_READING` LLM calls
of LLM_TIMEOUT_SECONDS each (three steps, each re-asked once). The lease a claim takes in
Postgres (VISIBILITY_TIMEOUT_SECONDS, the setting's name from before the stream became a
doorbell) must outlast the longest job, or a second worker would take over a job that is still
running; one job plus the reserve must fit in the Lambda's timeout, or no job could ever start.
`consumer_config` checks both when the consumer is built, so a bad combination fails at cold
start with a message naming the settings, instead of double-running or starving jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import ConfigError

if TYPE_CHECKING:
    from shared.settings import Settings

# The job-consumer's Lambda timeout in serverless.yml (tests/readings keeps the two equal); also
# the budget of a call that comes without a Lambda context.
FUNCTION_TIMEOUT_SECONDS = 300.0
# What an invocation keeps for itself after its last batch: the SQL finish of that batch and its
# dead letters, the queue-health query and the response.
RESERVE_SECONDS = 2.0
# A job's work besides its LLM calls: the deck lookup, prompt building, validation.
JOB_OVERHEAD_SECONDS = 2.0
# The offline reader makes no network call: a generous bound for one job.
OFFLINE_JOB_SECONDS = 1.0


@dataclass(frozen=True)
class ConsumerConfig:
    batch_size: int = 10
    # A claimed job's lease in Postgres, the one timeout of the job rule: longer than the longest
    # job (checked below). Also how long a rung doorbell may go unanswered before the sweep
    # rings again. The default is VISIBILITY_TIMEOUT_SECONDS's (tests/readings/
    # test_consumer_limits.py ties the two).
    lease_seconds: int = 240
    backoff_base_seconds: float = 10.0
    backoff_max_seconds: float = 3600.0
    sweep_limit: int = 200
    # A new job gets this long to reach the stream from create-reading before the sweep does it.
    sweep_grace_seconds: int = 10
    # The longest one job may take. No batch is claimed unless the time left covers every job
    # of it at this rate (or at the slowest rate measured in this invocation, if higher), plus
    # the reserve, and no batch is larger than one lease can cover.
    job_budget_seconds: float = OFFLINE_JOB_SECONDS
    reserve_seconds: float = RESERVE_SECONDS

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.job_budget_seconds <= 0 or self.reserve_seconds < 0:
            raise ConfigError("The consumer needs a positive batch size and job budget.")
        if self.lease_seconds <= self.job_budget_seconds:
            raise ConfigError(
                f"The lease ({self.lease_seconds} s) must exceed the "
                f"longest job ({self.job_budget_seconds:g} s)."
            )


def longest_job_seconds(settings: Settings) -> float:
    """The most one reading can take with the configured provider."""
    if settings.llm_provider.strip().lower() == "offline":
        return OFFLINE_JOB_SECONDS
    # Only the consumer of an LLM-backed deployment pays for this import (httpx).
    from shared.pipeline.openai_provider import MAX_CALLS_PER_READING

    return MAX_CALLS_PER_READING * settings.llm_timeout_seconds + JOB_OVERHEAD_SECONDS


def consumer_config(settings: Settings,
                    function_timeout_seconds: float = FUNCTION_TIMEOUT_SECONDS) -> ConsumerConfig:
    """The consumer's timing from the settings; ConfigError when they cannot work together."""
    job = longest_job_seconds(settings)
    calls = most = ""
    if settings.llm_provider.strip().lower() != "offline":
        from shared.pipeline.openai_provider import MAX_CALLS_PER_READING

        calls = (f" (up to {MAX_CALLS_PER_READING} LLM calls of LLM_TIMEOUT_SECONDS="
                 f"{settings.llm_timeout_seconds:g} s, plus {JOB_OVERHEAD_SECONDS:g} s)")
        limit = (function_timeout_seconds - RESERVE_SECONDS - JOB_OVERHEAD_SECONDS) \
            / MAX_CALLS_PER_READING
        most = f": set LLM_TIMEOUT_SECONDS to at most {limit:g} or raise that timeout"
    try:
        config = ConsumerConfig(lease_seconds=settings.visibility_timeout_seconds,
                                job_budget_seconds=job, reserve_seconds=RESERVE_SECONDS)
    except ConfigError as exc:
        # The lease rule is ConsumerConfig's; here it is said in the settings' own names.
        raise ConfigError(
            f"VISIBILITY_TIMEOUT_SECONDS={settings.visibility_timeout_seconds} must exceed the "
            f"longest reading, {job:g} s{calls}."
        ) from exc
    if job + RESERVE_SECONDS > function_timeout_seconds:
        raise ConfigError(
            f"One reading may take {job:g} s{calls}, more than the job-consumer's "
            f"{function_timeout_seconds:g} s timeout leaves after its {RESERVE_SECONDS:g} s "
            f"reserve{most}."
        )
    return config
