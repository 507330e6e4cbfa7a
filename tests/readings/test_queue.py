"""The reading queue over upstash-redis, the Upstash bridge and a real Redis."""

from __future__ import annotations


def pending(queue) -> int:
    """Entries the group holds as delivered and unacknowledged (XPENDING's count)."""
    summary = queue.redis.xpending(queue.stream, queue.group)
    return int(summary[0]) if summary else 0


def test_reading_takes_the_doorbells_off_the_stream_and_leaves_nothing_pending(queue):
    queue.enqueue(["job-1", "job-2", "job-3"])

    first = queue.read("a", 2)
    second = queue.read("b", 2)

    assert [e.job_id for e in first] == ["job-1", "job-2"]
    assert [e.job_id for e in second] == ["job-3"]
    assert queue.read("a", 2) == []
    # Nothing to acknowledge, nothing another consumer could take over: the claim in SQL is
    # the only lease.
    assert (pending(queue), queue.length()) == (0, 0)


def test_the_same_job_may_ring_twice_and_each_doorbell_is_read_once(queue):
    queue.enqueue(["job-1", "job-1"])

    assert [e.job_id for e in queue.read("a", 10)] == ["job-1", "job-1"]
    assert queue.read("b", 10) == []


def test_checking_the_group_notices_a_stream_lost_between_runs(queue):
    queue.check_group()
    assert queue.take_recreated() is True  # a new queue: nothing was there
    queue.check_group()
    assert queue.take_recreated() is False

    queue.redis.delete(queue.stream)
    queue.check_group()

    assert queue.take_recreated() is True


def test_reading_recreates_a_vanished_stream_and_group(queue):
    queue.enqueue(["job-1"])
    queue.read("a", 1)
    queue.redis.delete(queue.stream)

    assert queue.read("a", 1) == []
    queue.enqueue(["job-2"])
    assert [e.job_id for e in queue.read("a", 1)] == ["job-2"]


def test_dead_letters_keep_the_job_and_the_reason(queue):
    queue.dead_letter([{"job_id": "job-1", "attempts": 5, "error_code": "timeout",
                        "error": None}])

    assert queue.dead_letters() == [
        {"job_id": "job-1", "attempts": "5", "error_code": "timeout", "error": ""}]
