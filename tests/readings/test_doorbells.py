"""The stream is a doorbell, Postgres holds the lease: a duplicate doorbell is harmless, one the
claim refuses is dropped, and a lost one is rung again by the sweep within a bounded time.
Real PostgreSQL (through the REST gateway) and Redis (through the Upstash bridge)."""

from __future__ import annotations

import time

from shared.readings import ReadingService
from tests.readings.conftest import ask, drain, make_consumer, make_user
from tests.readings.test_consumer import attempts, job, readings_of, star_ledger
from tests.support.waiting import wait_for


def finished(sql, job_id) -> bool:
    return job(sql, job_id)["status"] == "succeeded"


def test_duplicate_doorbells_run_a_job_once_with_one_charge(sql, database, queue, service):
    user = make_user(sql, stars=1)
    job_id = ask(service, user).job_id  # rung once by create-reading
    queue.enqueue([str(job_id), str(job_id)])

    # One doorbell per batch: the claim in SQL, not the batch, refuses the copies.
    report = drain(make_consumer(database, queue, batch_size=1))

    assert (report.claimed, report.succeeded) == (1, 1)
    assert queue.length() == 0
    # A doorbell for a finished job is dropped as well.
    queue.enqueue([str(job_id)])
    assert drain(make_consumer(database, queue)).claimed == 0
    assert job(sql, job_id)["attempts"] == 1 and readings_of(sql, job_id) == 1
    assert star_ledger(sql, user) == [("purchase", 1), ("reading", -1)]


def test_a_doorbell_for_a_job_another_worker_leases_is_dropped_and_the_job_left_to_it(
        sql, database, queue, service):
    user = make_user(sql, stars=1)
    job_id = ask(service, user).job_id
    queue.read("other", 10)
    claim = database.service.rpc("claim_reading_jobs", {
        "p_job_ids": [str(job_id)], "p_worker_id": "other/1",
        "p_visibility_timeout_secs": 600}).execute().data
    assert claim[0]["outcome"] == "claimed"
    queue.enqueue([str(job_id)])

    report = drain(make_consumer(database, queue))

    assert report.claimed == 0 and queue.length() == 0
    row = job(sql, job_id)
    assert (row["status"], row["attempts"], row["worker_id"]) == ("processing", 1, "other/1")


def test_a_doorbell_taken_by_a_consumer_killed_before_its_claim_is_rung_after_the_grace(
        sql, database, queue, service):
    user = make_user(sql, stars=1)
    job_id = ask(service, user).job_id
    # The doorbell create-reading rang is read, and its reader dies before claiming.
    assert [e.job_id for e in queue.read("doomed", 10)] == [str(job_id)]
    assert queue.length() == 0
    survivor = make_consumer(database, queue, sweep_grace_seconds=1)

    wait_for(lambda: drain(survivor), lambda _: finished(sql, job_id), timeout=15,
             interval=0.2)

    assert [(a["attempt_number"], a["success"]) for a in attempts(sql, job_id)] == [(1, True)]
    assert star_ledger(sql, user) == [("purchase", 1), ("reading", -1)]


def test_a_doorbell_the_sweep_rang_and_a_killed_consumer_took_is_rung_again_after_one_lease(
        sql, database, queue):
    offline = ReadingService(database=database, queue=None, waker=None, max_pending=10)
    user = make_user(sql, stars=1)
    job_id = ask(offline, user).job_id  # never rung: Redis was out for create-reading
    # A run too short for any job still sweeps: it rings the job and stamps it as rung.
    sweeper = make_consumer(database, queue, lease_seconds=2)
    assert sweeper.run(deadline=time.monotonic() + 0.5).requeued >= 1
    assert job(sql, job_id)["enqueued_at"] is not None
    assert str(job_id) in [e.job_id for e in queue.read("doomed", 100)]

    survivor = make_consumer(database, queue, lease_seconds=2)
    wait_for(lambda: drain(survivor), lambda _: finished(sql, job_id), timeout=15,
             interval=0.2)

    assert [(a["attempt_number"], a["success"]) for a in attempts(sql, job_id)] == [(1, True)]
    assert readings_of(sql, job_id) == 1
    assert star_ledger(sql, user) == [("purchase", 1), ("reading", -1)]
