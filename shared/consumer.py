"""The job-consumer use case: one invocation drains what it can of the reading queue in time.

Postgres holds the lease; the stream is a doorbell (shared/queue.py, docs/DESIGN.md). Reading
an entry takes nothing: it is gone from the stream as it is read, and only the claim in SQL
decides who works on a job, for one lease (`ConsumerConfig.lease_seconds`). The one rule and
its one timeout live in `claim_reading_jobs`.

Order of work: check the stream's group, ring again the jobs Postgres says are due (the sweep:
never rung, rung but not claimed within a lease, lease expired, retry due), retry due account
cleanups, then read and process batches until the stream is empty, the job limit is reached or
the time left would not cover another batch.

A batch is: read its doorbells (they leave the stream), claim the jobs in SQL (one round trip),
run the pipeline for each claimed job, record every outcome in SQL (one round trip). A doorbell
for a job that needs nothing from this worker (already finished, leased by a live worker, retry
not yet due) is simply dropped: Postgres remembers the job, and the sweep rings it when it is
due. A doorbell lost anywhere (Redis emptied, a consumer killed between read and claim, a failed
push) is rung again by a later sweep.

When the queue had to create the stream's group again (Redis was flushed or replaced), the
doorbells of the lost stream are gone: that run's sweep rings every open job at once, not only
those whose doorbell went unanswered. A failure that no retry can cure (the pipeline refuses
the job's own data: a validation or value error) is reported as not retryable, so the job is
dead-lettered and refunded at once instead of after every attempt.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared import account_cleanup, observability
from shared.consumer_config import ConsumerConfig
from shared.reading_jobs import (
    AttemptResult,
    Claim,
    ErrorResult,
    Finished,
    ReadingResult,
    RefusalResult,
    dead_letter_entry,
)
from shared.request_model import RequestModel

if TYPE_CHECKING:
    from shared.account_cleanup import AccountCleanup
    from shared.db import Database
    from shared.pipeline.provider import ReadingProvider
    from shared.queue import ReadingQueue, StreamEntry

logger = logging.getLogger("mimivibe.consumer")

__all__ = ["ConsumeRequest", "ConsumerConfig", "ConsumerReport", "JobConsumer"]

CLAIM_FUNCTION = "claim_reading_jobs"
FINISH_FUNCTION = "finish_reading_jobs"
SWEEP_FUNCTION = "reading_jobs_to_enqueue"
QUEUE_HEALTH_FUNCTION = "queue_health"
_CLAIMS = TypeAdapter(list[Claim])
_FINISHED = TypeAdapter(list[Finished])


class ConsumeRequest(RequestModel):
    max_jobs: int | None = Field(default=None, ge=1, le=10_000)
    # `reconcile` (the mimivibe-reconcile schedule): compare Stripe's objects of the last
    # `since_hours` with the database instead of draining (shared/reconciliation.py);
    # `expire_invites` (the mimivibe-expire-invites schedule): expire pending invites past
    # their date instead (shared/invites.py).
    task: Literal["drain", "reconcile", "expire_invites"] = "drain"
    since_hours: int = Field(default=72, ge=1, le=720)


class ConsumerReport(BaseModel):
    model_config = ConfigDict(defer_build=True)

    claimed: int = 0
    succeeded: int = 0
    retried: int = 0
    dead_lettered: int = 0
    requeued: int = 0
    duration_ms: int = 0


class JobConsumer:
    def __init__(
        self,
        *,
        database: Database,
        queue: ReadingQueue,
        provider: Callable[[], ReadingProvider],
        config: ConsumerConfig | None = None,
        consumer_name: str | None = None,
        account_cleanup: Callable[[], AccountCleanup] | None = None,
    ) -> None:
        self._database = database
        self._queue = queue
        self._provider = provider
        # Built only when a cleanup is due; None: no account-cleanup sweep (a test's consumer).
        self._account_cleanup = account_cleanup
        self.config = config or ConsumerConfig()
        # One stream consumer per container; each invocation is a distinct worker in SQL.
        self.consumer_name = consumer_name or f"consumer-{uuid.uuid4().hex[:12]}"

    def _rpc(self, function: str, params: dict[str, Any]) -> Any:
        """A SQL function called as the service role; its JSON result."""
        from shared.db import execute

        return execute(self._database.service.rpc(function, params)).data

    # -- the invocation ---------------------------------------------------------------
    def run(self, *, deadline: float, max_jobs: int | None = None) -> ConsumerReport:
        """Work until `deadline` (time.monotonic()) minus the reserve, or `max_jobs` claims.

        When the stream cannot be reached, the SQL-only housekeeping still runs (account
        cleanups, queue metrics) and the report says what was done; the jobs wait in Postgres,
        and the sweep streams them once Redis answers again.
        """
        started = time.monotonic()
        report = ConsumerReport()
        worker_id = f"{self.consumer_name}/{uuid.uuid4().hex[:12]}"
        limit = max_jobs if max_jobs is not None else 10**9
        cfg = self.config
        if deadline - started < cfg.job_budget_seconds + cfg.reserve_seconds:
            logger.warning("%.1f s left cannot cover one job (%.1f s + %.1f s reserve): "
                           "housekeeping only", deadline - started, cfg.job_budget_seconds,
                           cfg.reserve_seconds)

        # Every open job again when the stream was lost, else only what is due or unanswered.
        stream_up = self._stream_step("check", self._queue.check_group)
        if stream_up:
            everything = self._queue.recreated
            stream_up = self._stream_step("sweep", lambda: self._sweep(report, everything))
            if stream_up and everything:
                self._queue.take_recreated()
        # Stripe and Redis work left over from account erasures (retried until done).
        if self._account_cleanup is not None:
            account_cleanup.sweep_account_cleanups(self._database, self._account_cleanup)

        if stream_up:
            self._stream_step("drain", lambda: self._drain(deadline, limit, worker_id, report))
        self._record_queue_health()
        observability.record_consumer_run(report.succeeded, report.retried,
                                          report.dead_lettered)
        report.duration_ms = round((time.monotonic() - started) * 1000)
        return report

    def _drain(self, deadline: float, limit: int, worker_id: str,
               report: ConsumerReport) -> None:
        """Doorbells batch by batch while time and limit allow."""
        cfg = self.config
        per_job = cfg.job_budget_seconds
        while report.claimed < limit:
            room = deadline - cfg.reserve_seconds - time.monotonic()
            # Every job of a batch is claimed up front and finished after the last one ran:
            # the batch must end before the deadline and within each job's lease.
            count = min(cfg.batch_size, limit - report.claimed, int(room / per_job),
                        int(cfg.lease_seconds / per_job))
            if count <= 0:
                return
            entries = self._queue.read(self.consumer_name, count)
            if not entries:
                return
            batch_started = time.monotonic()
            processed = self._process(entries, worker_id, report)
            if processed:
                # A job slower than assumed makes the next batches smaller, never larger.
                per_job = max(per_job, (time.monotonic() - batch_started) / processed)

    def _stream_step(self, step: str, work: Callable[[], None]) -> bool:
        """Run one step that needs Redis; False (logged) when the stream cannot be reached."""
        from shared.queue import is_unavailable

        try:
            work()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            logger.warning("the stream is unreachable (%s during %s); SQL housekeeping only",
                           type(exc).__name__, step)
            return False
        return True

    def _record_queue_health(self) -> None:
        """Queue depth and lag as metrics, once per invocation; never fails the run."""
        try:
            rows = self._rpc(QUEUE_HEALTH_FUNCTION, {}) or []
        except Exception:
            logger.warning("queue_health() failed; no queue metrics this run", exc_info=True)
            return
        if rows:
            observability.record_queue_health(rows[0])

    # -- housekeeping -----------------------------------------------------------------
    def _sweep(self, report: ConsumerReport, everything: bool = False) -> None:
        """Ring the jobs SQL says are due. SQL stamps them as rung when it returns them; a push
        that fails after that is not reported back: a doorbell unanswered for one lease is
        rung again by a later sweep, whatever the reason it went unanswered."""
        cfg = self.config
        params: dict[str, Any] = {
            "p_limit": cfg.sweep_limit,
            # After a lost stream, even a job created a moment ago may have had its entry in it.
            "p_grace_secs": 0 if everything else cfg.sweep_grace_seconds,
            "p_stale_secs": 0 if everything else cfg.lease_seconds,
        }
        job_ids = [str(j) for j in self._rpc(SWEEP_FUNCTION, params) or []]
        if everything:
            logger.warning("the stream was lost: %d open job(s) rung again", len(job_ids))
        self._queue.enqueue(job_ids, request_path=False)
        report.requeued = len(job_ids)

    # -- one batch --------------------------------------------------------------------
    def _process(self, entries: Sequence[StreamEntry], worker_id: str,
                 report: ConsumerReport) -> int:
        """Claim, run and finish the jobs of `entries`; returns how many pipelines ran."""
        job_ids = list(dict.fromkeys(e.job_id for e in entries if e.job_id))
        dead: list[Claim | Finished] = []
        results: list[AttemptResult] = []
        if job_ids:
            params: dict[str, Any] = {"p_job_ids": job_ids, "p_worker_id": worker_id,
                      "p_visibility_timeout_secs": self.config.lease_seconds}
            for claim in _CLAIMS.validate_python(self._rpc(CLAIM_FUNCTION, params) or []):
                if claim.outcome == "claimed":
                    report.claimed += 1
                    results.append(self._attempt(claim))
                elif claim.outcome == "dead_lettered":
                    dead.append(claim)
        if results:
            finish: dict[str, Any] = {
                "p_results": [r.model_dump(mode="json") for r in results],
                "p_backoff_base_secs": self.config.backoff_base_seconds,
                "p_backoff_max_secs": self.config.backoff_max_seconds}
            for finished in _FINISHED.validate_python(self._rpc(FINISH_FUNCTION, finish) or []):
                if finished.outcome in ("succeeded", "refused"):
                    report.succeeded += 1
                elif finished.outcome == "retry":
                    report.retried += 1
                elif finished.outcome == "dead_lettered":
                    dead.append(finished)
        if dead:
            report.dead_lettered += len(dead)
            self._queue.dead_letter([dead_letter_entry(d) for d in dead])
        return len(results)

    def _attempt(self, claim: Claim) -> AttemptResult:
        """Run the pipeline for one claimed job; the result element of finish_reading_jobs."""
        from shared.pipeline.errors import PipelineError
        from shared.pipeline.models import DrawnCard
        from shared.pipeline.run import run_pipeline

        assert claim.attempt is not None, "a claimed job carries its attempt"
        job_id, attempt = claim.job_id, claim.attempt
        payload = claim.payload or {}
        try:
            cards = [DrawnCard.model_validate(
                {k: c.get(k) for k in ("position", "card_id", "orientation")}
            ) for c in payload.get("cards") or []]
            result = run_pipeline(payload["question"], payload["locale"], cards,
                                  self._provider())
        except PipelineError as exc:
            return ErrorResult(job_id=job_id, attempt=attempt, error=str(exc)[:2000],
                               error_code=type(exc).__name__, retryable=exc.retryable)
        except (ValueError, TypeError, LookupError) as exc:
            # The job's own data is refused (pydantic's ValidationError is a ValueError): the
            # same input fails the same way on every attempt, so it dead-letters at once.
            logger.exception("job %s attempt %s cannot be processed", job_id, attempt)
            return ErrorResult(job_id=job_id, attempt=attempt, error=failure_text(exc)[:2000],
                               error_code="unprocessable_job", retryable=False)
        except Exception as exc:
            # Our own bug or an unexpected library failure: retry, and keep the evidence.
            logger.exception("job %s attempt %s crashed", job_id, attempt)
            return ErrorResult(job_id=job_id, attempt=attempt, error=failure_text(exc)[:2000],
                               error_code="internal_error", retryable=True)
        common = {"job_id": job_id, "attempt": attempt,
                  "prompt_version": result.prompt_version,
                  "schema_version": result.schema_version,
                  "processing_time_ms": result.processing_time_ms}
        if result.refused:
            return RefusalResult(**common, refusal=result.guard.model_dump(mode="json"))
        assert result.question_analysis is not None and result.tarot_reading is not None
        return ReadingResult(**common,
                             question_analysis=result.question_analysis.model_dump(mode="json"),
                             tarot_reading=result.tarot_reading.model_dump(mode="json"))


def failure_text(exc: BaseException) -> str:
    """What the job row keeps of a failure: never the input it failed on (the question)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        return "ValidationError: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in errors)
    return f"{type(exc).__name__}: {exc}"
