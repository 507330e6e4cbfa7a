"""The job consumer against real PostgreSQL (through the REST gateway) and Redis (through the
Upstash bridge): exactly-once effects whatever the stream delivers, retries, dead letters."""

from __future__ import annotations

import time
from typing import Any

from shared.pipeline import PROMPT_VERSION, SCHEMA_VERSION
from shared.pipeline.errors import PermanentProviderError, RetryableProviderError
from shared.pipeline.models import GuardResult
from shared.pipeline.offline import OfflineReader
from tests.readings.conftest import ask, drain, make_consumer, make_user
from tests.support.waiting import wait_for


class FailingProvider(OfflineReader):
    """The offline reader whose analysis step always fails."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
        self.calls = 0

    def analyse(self, question: str, locale: Any) -> Any:
        self.calls += 1
        raise self.error


def job(sql, job_id) -> dict[str, Any]:
    return sql.execute("select * from public.jobs where id = %s", (job_id,)).fetchone()


def attempts(sql, job_id) -> list[dict[str, Any]]:
    return sql.execute(
        "select attempt_number, worker_id, success, error_code, finished_at is not null as done"
        " from public.job_attempts where job_id = %s order by attempt_number", (job_id,)).fetchall()


def star_ledger(sql, user_id) -> list[tuple[str, int]]:
    rows = sql.execute("select transaction_type::text as t, amount from public.wallet_transactions"
                       " where user_id = %s order by seq", (user_id,)).fetchall()
    return [(r["t"], r["amount"]) for r in rows]


def readings_of(sql, job_id) -> int:
    return sql.execute("select count(*) as n from public.tarot_readings where job_id = %s",
                       (job_id,)).fetchone()["n"]


def test_queued_jobs_are_read_claimed_and_completed_once(sql, database, queue, service):
    user = make_user(sql, stars=3)
    jobs = [ask(service, user, f"งานใหม่ ครั้งที่ {i}").job_id for i in range(3)]
    consumer = make_consumer(database, queue, batch_size=2)

    report = drain(consumer)

    assert (report.claimed, report.succeeded, report.retried, report.dead_lettered) == (3, 3, 0, 0)
    for job_id in jobs:
        row = job(sql, job_id)
        assert (row["status"], row["attempts"], row["worker_id"]) == ("succeeded", 1, None)
        reading = sql.execute("select * from public.tarot_readings where job_id = %s",
                              (job_id,)).fetchone()
        assert row["result"] == {"reading_id": str(reading["id"])}
        assert reading["cards"] == row["payload"]["cards"]
        # The versions that wrote the reading are recorded on the job as well.
        assert (row["prompt_version"], row["schema_version"]) == (
            reading["prompt_version"], reading["schema_version"]) == (
            PROMPT_VERSION, SCHEMA_VERSION)
        assert len(reading["tarot_reading"]["cards"]) == 3
        assert reading["question_analysis"]["topic"] == "work"
        assert [(a["success"], a["done"]) for a in attempts(sql, job_id)] == [(True, True)]
    assert queue.length() == 0
    assert drain(consumer).claimed == 0
    assert star_ledger(sql, user) == [("purchase", 3)] + [("reading", -1)] * 3


def test_a_consumer_that_dies_after_claiming_leaves_the_job_to_the_next_run_after_its_lease(
        sql, database, queue, service):
    user = make_user(sql, stars=1)
    job_id = ask(service, user).job_id
    # The first consumer takes the doorbell and claims the job with a 3 s lease, then dies.
    [entry] = queue.read("doomed", 10)
    claim = database.service.rpc("claim_reading_jobs", {
        "p_job_ids": [entry.job_id], "p_worker_id": "doomed/1",
        "p_visibility_timeout_secs": 3}).execute().data
    assert claim[0]["outcome"] == "claimed" and claim[0]["attempt"] == 1
    survivor = make_consumer(database, queue, lease_seconds=1, job_budget_seconds=0.5)

    early = drain(survivor)
    # The sweep rings the job once its lease expired; the survivor's claim takes it.
    late = wait_for(lambda: drain(survivor), lambda run: run.claimed)

    assert (early.requeued, early.claimed) == (0, 0)
    assert (late.requeued, late.claimed, late.succeeded) == (1, 1, 1)
    # The dead worker comes back and reports its attempt: it no longer holds the job.
    stale = database.service.rpc("finish_reading_jobs", {"p_results": [{
        "job_id": str(job_id), "attempt": 1, "kind": "error", "error": "late",
        "retryable": True}]}).execute().data
    assert stale == [{"job_id": str(job_id), "outcome": "stale"}]
    assert (job(sql, job_id)["status"], job(sql, job_id)["attempts"]) == ("succeeded", 2)
    assert [(a["attempt_number"], a["success"], a["error_code"]) for a in attempts(sql, job_id)] \
        == [(1, False, "lease_expired"), (2, True, None)]
    assert readings_of(sql, job_id) == 1
    assert star_ledger(sql, user) == [("purchase", 1), ("reading", -1)]
    drain(survivor)
    assert queue.length() == 0 and readings_of(sql, job_id) == 1


def test_readings_created_while_redis_is_down_are_processed_after_it_returns(
        sql, database, tmp_path):
    from devstack.redis_server import RedisServer
    from devstack.serve import ServerThread
    from devstack.upstash_bridge import create_app
    from shared.queue import ReadingQueue
    from shared.readings import ReadingService
    from shared.redis import build_redis
    from tests.readings.conftest import UPSTASH_TOKEN

    redis = RedisServer(tmp_path / "redis").start()
    with ServerThread(create_app(redis.url, UPSTASH_TOKEN), name="upstash") as bridge:
        client = build_redis(bridge.url, UPSTASH_TOKEN)
        queue = ReadingQueue(client)
        service = ReadingService(database=database, queue=queue, waker=None, max_pending=10)
        user = make_user(sql, stars=3)
        redis.stop()
        try:
            jobs = [ask(service, user, f"เงิน {i}").job_id for i in range(3)]
        finally:
            redis.start()
        consumer = make_consumer(database, queue)

        report = drain(consumer)

        client.close()
    redis.stop()
    assert report.requeued >= 3 and report.succeeded >= 3
    assert all(job(sql, j)["status"] == "succeeded" for j in jobs)
    assert all(readings_of(sql, j) == 1 for j in jobs)


def test_a_job_that_always_fails_is_dead_lettered_once_with_one_refund(
        sql, database, queue, service):
    user = make_user(sql, stars=1)
    job_id = ask(service, user).job_id
    provider = FailingProvider(RetryableProviderError("the model timed out"))
    consumer = make_consumer(database, queue, provider, backoff_base_seconds=0.05)
    waits: list[tuple[int, float]] = []

    for _ in range(30):
        drain(consumer)
        row = job(sql, job_id)
        if row["status"] == "dlq":
            break
        assert row["status"] == "failed"
        if not waits or waits[-1][0] != row["attempts"]:
            waits.append((row["attempts"],
                          (row["next_retry_at"] - row["last_error_at"]).total_seconds()))
        time.sleep(max(0.0, (row["next_retry_at"] - row["last_error_at"]).total_seconds()))

    row = job(sql, job_id)
    assert (row["status"], row["attempts"], row["max_attempts"]) == ("dlq", 5, 5)
    assert provider.calls == 5
    assert [w[0] for w in waits] == [1, 2, 3, 4]
    gaps = [w[1] for w in waits]
    assert gaps == sorted(gaps) and gaps[-1] > 2 * gaps[0]
    assert all(0.025 * 2 ** i <= g <= 0.05 * 2 ** i + 0.01 for i, g in enumerate(gaps))
    assert [(a["success"], a["error_code"]) for a in attempts(sql, job_id)] == \
        [(False, "RetryableProviderError")] * 5
    assert star_ledger(sql, user) == [("purchase", 1), ("reading", -1), ("refund", 1)]
    dead = [d for d in queue.dead_letters() if d["job_id"] == str(job_id)]
    assert len(dead) == 1 and dead[0]["attempts"] == "5"
    assert drain(consumer).claimed == 0
    assert star_ledger(sql, user)[-1] == ("refund", 1)


def test_a_permanent_error_dead_letters_at_once(sql, database, queue, service):
    user = make_user(sql, stars=1)
    job_id = ask(service, user).job_id
    provider = FailingProvider(PermanentProviderError("the API key was refused"))

    report = drain(make_consumer(database, queue, provider))

    assert (report.claimed, report.dead_lettered) == (1, 1)
    assert (job(sql, job_id)["status"], job(sql, job_id)["attempts"]) == ("dlq", 1)
    assert star_ledger(sql, user)[-1] == ("refund", 1)


def test_a_self_harm_question_gets_a_refusal_and_a_refund_not_a_reading(
        sql, database, queue, service):
    user = make_user(sql, stars=1)
    job_id = ask(service, user, "ฉันอยากตาย ไม่อยากอยู่แล้ว").job_id

    report = drain(make_consumer(database, queue))

    row = job(sql, job_id)
    assert report.succeeded == 1 and row["status"] == "succeeded"
    refusal = GuardResult.model_validate(row["result"]["refusal"])
    assert not refusal.allowed and refusal.category == "self_harm" and "1323" in (refusal.message or "")
    assert readings_of(sql, job_id) == 0
    assert (row["prompt_version"], row["schema_version"]) == (PROMPT_VERSION, SCHEMA_VERSION)
    assert star_ledger(sql, user) == [("purchase", 1), ("reading", -1), ("refund", 1)]


def test_a_run_stops_at_max_jobs_and_before_its_deadline(sql, database, queue, service):
    user = make_user(sql, stars=5)
    for i in range(5):
        ask(service, user, f"คำถาม {i}")
    consumer = make_consumer(database, queue, batch_size=10)

    assert consumer.run(deadline=time.monotonic() + 1.0, max_jobs=2).claimed == 0
    limited = drain(consumer, max_jobs=2)
    rest = drain(consumer)

    assert (limited.claimed, rest.claimed) == (2, 3)
    assert sql.execute("select * from public.wallet_audit()").fetchall() == []
