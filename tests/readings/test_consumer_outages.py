"""The consumer after Redis lost its stream, and failures no retry can cure."""

from __future__ import annotations

from typing import Any

from shared.pipeline.models import QuestionAnalysis
from shared.pipeline.offline import OfflineReader
from tests.readings.conftest import ask, drain, make_consumer, make_user
from tests.readings.test_consumer import job, readings_of, star_ledger


class RefusesItsOwnAnalysis(OfflineReader):
    """Analysis whose result the model refuses, the same way on every attempt."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def analyse(self, question: str, locale: Any) -> Any:
        self.calls += 1
        return QuestionAnalysis(topic="love", intent="insight", time_frame="unspecified",
                                keywords=[question.replace(" ", "-") * 10])


def test_a_lost_stream_is_created_again_and_every_open_job_streamed_again(
        sql, database, queue, service):
    queue.check_group()  # a warm consumer: its group is known to exist
    queue.take_recreated()
    user = make_user(sql, stars=2)
    jobs = [ask(service, user, f"ความรัก {i}").job_id for i in range(2)]
    # Redis loses everything (a flush, or a new empty instance) while the jobs wait in it.
    queue.redis.delete(queue.stream)

    report = drain(make_consumer(database, queue))

    assert (report.requeued, report.succeeded) == (2, 2)
    assert [job(sql, j)["status"] for j in jobs] == ["succeeded", "succeeded"]
    assert [readings_of(sql, j) for j in jobs] == [1, 1]
    assert queue.length() == 0


def test_a_stream_lost_in_the_middle_of_a_run_makes_the_next_run_ring_every_open_job(
        sql, database, queue, service):
    user = make_user(sql, stars=1)
    job_id = ask(service, user).job_id
    # A consumer takes the doorbell and dies before its claim; then Redis loses the stream,
    # which the next read notices (NOGROUP) and creates again.
    [entry] = queue.read("doomed", 10)
    assert entry.job_id == str(job_id)
    queue.redis.delete(queue.stream)
    assert queue.read("reader", 10) == []
    assert queue.recreated is True

    report = drain(make_consumer(database, queue, sweep_grace_seconds=3600))

    # Within its grace the job would not be rung by an ordinary sweep; after a lost stream it is.
    assert (report.requeued, report.succeeded) == (1, 1)
    assert job(sql, job_id)["status"] == "succeeded" and readings_of(sql, job_id) == 1
    assert queue.take_recreated() is False


def test_a_failure_the_jobs_own_data_causes_dead_letters_at_once_with_one_refund(
        sql, database, queue, service):
    user = make_user(sql, stars=1)
    job_id = ask(service, user, "secret words of my question").job_id
    provider = RefusesItsOwnAnalysis()

    report = drain(make_consumer(database, queue, provider))
    again = drain(make_consumer(database, queue, provider))

    assert (report.claimed, report.dead_lettered, report.retried) == (1, 1, 0)
    assert (again.claimed, provider.calls) == (0, 1)
    row = job(sql, job_id)
    assert (row["status"], row["attempts"]) == ("dlq", 1)
    assert "keyword" in row["last_error"] and "secret" not in row["last_error"]
    assert star_ledger(sql, user) == [("purchase", 1), ("reading", -1), ("refund", 1)]
    [dead] = [d for d in queue.dead_letters() if d["job_id"] == str(job_id)]
    assert dead["error_code"] == "unprocessable_job"
