"""The reading queue over upstash-redis, the Upstash bridge and a real Redis."""

from __future__ import annotations

import time


def test_entries_are_read_in_batches_once_and_gone_after_acknowledgement(queue):
    queue.enqueue(["job-1", "job-2", "job-3"])

    first = queue.read("a", 2)
    second = queue.read("b", 2)

    assert [e.job_id for e in first] == ["job-1", "job-2"]
    assert [e.job_id for e in second] == ["job-3"]
    assert queue.read("a", 2) == []
    assert queue.pending_count() == 3
    assert queue.ack(e.entry_id for e in first + second) == 3
    assert (queue.pending_count(), queue.length()) == (0, 0)


def test_an_entry_left_pending_is_taken_over_only_after_the_visibility_timeout(queue):
    queue.enqueue(["job-1"])
    [entry] = queue.read("dead-consumer", 10)

    assert queue.reclaim("survivor", min_idle_ms=300, count=10) == []
    time.sleep(0.4)
    reclaimed = queue.reclaim("survivor", min_idle_ms=300, count=10)

    assert reclaimed == [entry]
    # Taken over: idle again from now, so nobody else reclaims it at once.
    assert queue.reclaim("third", min_idle_ms=300, count=10) == []
    assert queue.ack([entry.entry_id]) == 1


def test_reclaim_stops_at_its_count(queue):
    queue.enqueue([f"job-{i}" for i in range(5)])
    queue.read("dead-consumer", 5)
    time.sleep(0.05)

    assert len(queue.reclaim("survivor", min_idle_ms=10, count=3)) == 3
    assert len(queue.reclaim("survivor", min_idle_ms=0, count=10)) == 5


def test_acknowledging_twice_counts_once(queue):
    queue.enqueue(["job-1"])
    [entry] = queue.read("a", 1)

    assert queue.ack([entry.entry_id, entry.entry_id]) == 1
    assert queue.ack([entry.entry_id]) == 0


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
