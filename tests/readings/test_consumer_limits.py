"""The consumer's limits: its timing settings are validated together, it takes no job the time
left cannot cover, no batch outlasts a lease, and without Redis it still does its SQL-only
housekeeping. Real PostgreSQL (through the REST gateway) and Redis (through the Upstash bridge)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from shared.consumer_config import (
    FUNCTION_TIMEOUT_SECONDS,
    JOB_OVERHEAD_SECONDS,
    ConsumerConfig,
    consumer_config,
)
from shared.errors import ConfigError
from shared.pipeline.offline import OfflineReader
from shared.queue import ReadingQueue, StreamEntry
from shared.settings import Settings
from tests.readings.conftest import ask, make_consumer, make_user
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def settings(**overrides: Any) -> Settings:
    base = {"supabase_url": "http://127.0.0.1:9", "supabase_anon_key": "a",
            "supabase_service_role_key": "s", "supabase_jwt_secret": "j",
            "upstash_redis_rest_url": "http://127.0.0.1:9", "upstash_redis_rest_token": "t"}
    return Settings(**{**base, **overrides})


class RecordingQueue(ReadingQueue):
    """The queue, remembering how many entries each read asked for."""

    def __init__(self, queue: ReadingQueue) -> None:
        super().__init__(queue.redis, stream=queue.stream,
                         dead_letter_stream=queue.dead_letter_stream)
        self.reads: list[int] = []

    def read(self, consumer: str, count: int) -> list[StreamEntry]:
        self.reads.append(count)
        return super().read(consumer, count)


class SlowReader(OfflineReader):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def analyse(self, question: str, locale: Any) -> Any:
        time.sleep(self.seconds)
        return super().analyse(question, locale)


def status_of(sql: Any, job_id: Any) -> str:
    return sql.execute("select status::text as s from public.jobs where id = %s",
                       (job_id,)).fetchone()["s"]


def expired_invite(sql: Any) -> Any:
    inviter, invitee = make_user(sql), make_user(sql)
    return sql.execute(
        "insert into public.user_invites (inviter_id, invitee_id, invite_code, created_at,"
        " expires_at) select %s, %s, invite_code, now() - interval '31 days',"
        " now() - interval '1 day' from public.users where id = %s returning id",
        (inviter, invitee, inviter)).fetchone()["id"]


# -- settings --------------------------------------------------------------------------------

def test_the_job_consumer_timeout_is_the_one_serverless_yml_gives_the_function():
    from devstack.lambda_context import load_functions

    spec = load_functions(ROOT / "serverless.yml")["job-consumer"]
    assert spec.timeout_seconds == FUNCTION_TIMEOUT_SECONDS


def test_the_default_settings_fit_a_reading_of_six_llm_calls_in_the_function_and_its_lease():
    config = consumer_config(settings(llm_provider="openai"))

    longest = 6 * settings().llm_timeout_seconds + JOB_OVERHEAD_SECONDS
    assert config.job_budget_seconds == longest
    assert config.lease_seconds > longest
    assert longest + config.reserve_seconds <= FUNCTION_TIMEOUT_SECONDS


def test_an_llm_timeout_whose_six_calls_outlast_the_function_is_a_configuration_error():
    # (300 s - 2 s reserve - 2 s overhead) / 6 calls = 49.33 s per call at most.
    with pytest.raises(ConfigError, match=r"LLM_TIMEOUT_SECONDS to at most 49\.3"):
        consumer_config(settings(llm_provider="openai", llm_timeout_seconds=50,
                                 visibility_timeout_seconds=600))


def test_a_lease_shorter_than_six_llm_calls_is_a_configuration_error():
    # 6 x 8 s + 2 s = 50 s fits the function, but not a 45 s lease.
    with pytest.raises(ConfigError, match="VISIBILITY_TIMEOUT_SECONDS=45 must exceed"):
        consumer_config(settings(llm_provider="openai", llm_timeout_seconds=8,
                                 visibility_timeout_seconds=45))


def test_the_consumer_refuses_to_build_with_inconsistent_settings():
    from shared.bootstrap import Services

    # 6 x 30 s + 2 s = 182 s fits the function, not a 100 s lease.
    inconsistent = settings(llm_provider="openai", llm_timeout_seconds=30,
                            visibility_timeout_seconds=100)
    with pytest.raises(ConfigError, match="VISIBILITY_TIMEOUT_SECONDS=100 must exceed"):
        _ = Services(inconsistent).job_consumer


def test_the_consumer_and_the_settings_default_to_the_same_lease():
    assert ConsumerConfig().lease_seconds == \
        Settings.model_fields["visibility_timeout_seconds"].default == 240


def test_a_lease_no_longer_than_the_job_budget_is_refused():
    with pytest.raises(ConfigError):
        ConsumerConfig(lease_seconds=5, job_budget_seconds=5.0)


# -- time ------------------------------------------------------------------------------------

def test_no_job_is_taken_when_the_time_left_cannot_cover_one(sql, database, queue, service):
    user = make_user(sql, stars=1)
    job_id = ask(service, user).job_id
    consumer = make_consumer(database, queue, job_budget_seconds=5.0, reserve_seconds=2.0)

    report = consumer.run(deadline=time.monotonic() + 6.5)

    assert report.claimed == 0 and status_of(sql, job_id) == "queued"
    assert queue.length() >= 1  # not even read: its doorbell waits for another run
    assert make_consumer(database, queue).run(deadline=time.monotonic() + 30).succeeded >= 1
    assert status_of(sql, job_id) == "succeeded"


def test_a_batch_is_never_larger_than_the_time_left_covers(sql, database, queue, service):
    user = make_user(sql, stars=4)
    jobs = [ask(service, user, f"คำถาม {i}").job_id for i in range(4)]
    recording = RecordingQueue(queue)
    consumer = make_consumer(database, recording, job_budget_seconds=1.0, reserve_seconds=1.0)

    consumer.run(deadline=time.monotonic() + 3.9)

    assert recording.reads and recording.reads[0] == 2
    assert all(n <= 2 for n in recording.reads)
    assert all(status_of(sql, j) == "succeeded" for j in jobs)


def test_a_batch_never_outlasts_a_lease(sql, database, queue, service):
    user = make_user(sql, stars=5)
    for i in range(5):
        ask(service, user, f"งาน {i}")
    recording = RecordingQueue(queue)
    consumer = make_consumer(database, recording, lease_seconds=3,
                             job_budget_seconds=1.0)

    report = consumer.run(deadline=time.monotonic() + 30)

    assert report.succeeded >= 5
    assert recording.reads and max(recording.reads) == 3


def test_jobs_slower_than_the_budget_shrink_the_next_batches_and_the_run_ends_in_time(
        sql, database, queue, service):
    user = make_user(sql, stars=3)
    jobs = [ask(service, user, f"ความรัก {i}").job_id for i in range(3)]
    consumer = make_consumer(database, queue, SlowReader(0.4), batch_size=2,
                             job_budget_seconds=0.1, reserve_seconds=0.3)
    deadline = time.monotonic() + 1.5

    report = consumer.run(deadline=deadline)

    # First batch: 2 jobs at 0.4 s each; then 0.4 s per job leaves room for none.
    assert (report.claimed, report.succeeded) == (2, 2)
    assert time.monotonic() < deadline
    assert sorted(status_of(sql, j) for j in jobs) == ["queued", "succeeded", "succeeded"]


# -- Redis down ------------------------------------------------------------------------------

def test_without_redis_the_consumer_still_reports(sql, database):
    from shared.redis import build_redis

    dead = build_redis("http://127.0.0.1:9", "nobody")
    consumer = make_consumer(database, ReadingQueue(dead))

    report = consumer.run(deadline=time.monotonic() + 30)

    dead.close()
    assert (report.requeued, report.claimed) == (0, 0)


def test_the_invite_expiry_task_needs_no_redis_and_expires_each_invite_once(sql, database):
    from shared.invites import InviteService

    invite = expired_invite(sql)
    service = InviteService(database=database)

    assert service.expire_pending().expired_invites >= 1
    assert sql.execute("select status::text as s from public.user_invites where id = %s",
                       (invite,)).fetchone()["s"] == "expired"
    assert service.expire_pending().expired_invites == 0


class StreamDownOnEnqueue(ReadingQueue):
    """Reads work; adding to the stream fails as when Redis goes away."""

    def enqueue(self, job_ids: Any, *, request_path: bool = True) -> list[str]:
        from upstash_redis.errors import UpstashError

        raise UpstashError("Connection refused")


def test_a_job_whose_doorbell_the_sweep_could_not_push_is_rung_again_after_one_lease(
        sql, database, queue):
    from shared.readings import ReadingService

    offline = ReadingService(database=database, queue=None, waker=None, max_pending=10)
    user = make_user(sql, stars=1)
    job_id = ask(offline, user).job_id
    broken = StreamDownOnEnqueue(queue.redis, stream=queue.stream,
                                 dead_letter_stream=queue.dead_letter_stream)

    report = make_consumer(database, broken, lease_seconds=2).run(
        deadline=time.monotonic() + 30)

    assert (report.requeued, report.claimed) == (0, 0)
    # SQL stamped the job as rung when the sweep chose it; nobody tells it the push failed.
    row = sql.execute("select status::text as s, enqueued_at from public.jobs where id = %s",
                      (job_id,)).fetchone()
    assert row["s"] == "queued" and row["enqueued_at"] is not None
    consumer = make_consumer(database, queue, lease_seconds=2)
    wait_for(lambda: consumer.run(deadline=time.monotonic() + 30),
             lambda _: status_of(sql, job_id) == "succeeded", timeout=15, interval=0.2)
    assert sql.execute("select count(*) as n from public.tarot_readings where job_id = %s",
                       (job_id,)).fetchone()["n"] == 1
