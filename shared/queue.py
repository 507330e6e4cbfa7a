"""The reading queue: a Redis stream of doorbells with one consumer group, over upstash-redis (REST).

An entry only says "this job may have work"; it holds nothing. Postgres holds the lease: the
claim in SQL alone decides who works on a job (shared/consumer.py, docs/DESIGN.md). Reading
takes the entries out at once: XREADGROUP with NOACK leaves nothing pending in the group, and
the entries read are deleted in the next round trip, so the stream holds only unread doorbells.
A doorbell lost anywhere (Redis emptied, a consumer killed between read and claim, a failed
push) is rung again by the sweep in SQL; a duplicate one is harmless (the claim refuses a job
that is leased or finished).

Redis may lose the stream and its group (flushed, or a new empty instance): the consumer checks
the group at the start of every run (`check_group()`), and wherever Redis answers NOGROUP the
group is created again and the call repeated once; `take_recreated()` then tells the consumer to
ring every open job again from Postgres. Producing on a request path skips Redis for a few
seconds after it failed (`shared.redis.redis_outage`), so an outage costs one request at most
about a second.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from upstash_redis import Redis


logger = logging.getLogger("mimivibe.queue")

STREAM = "mimivibe:readings"
GROUP = "job-consumer"
DEAD_LETTER_STREAM = "mimivibe:readings:dead-letter"
# Trimming bounds the streams if deletions ever stop (a consumer killed between its read and
# its delete leaves those entries behind); it never trims in normal operation.
MAX_STREAM_LENGTH = 100_000
JOB_FIELD = "job_id"
T = TypeVar("T")


@dataclass(frozen=True)
class StreamEntry:
    entry_id: str
    # None when the entry carries no job id.
    job_id: str | None


def _field_map(fields: Any) -> dict[str, str]:
    if not isinstance(fields, list):
        return {}
    return {str(fields[i]): str(fields[i + 1]) for i in range(0, len(fields) - 1, 2)}


def _entries(raw: Any) -> list[StreamEntry]:
    entries = []
    for item in raw or []:
        if not isinstance(item, list) or not item:
            continue
        job_id = _field_map(item[1] if len(item) > 1 else None).get(JOB_FIELD)
        entries.append(StreamEntry(entry_id=str(item[0]), job_id=job_id))
    return entries


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the stream could not be used: an Upstash error reply (the bridge or
    Upstash could not reach Redis) or a transport failure (timeout, refused connection)."""
    import httpx
    from upstash_redis.errors import UpstashError

    return isinstance(exc, (UpstashError, httpx.HTTPError, QueueUnavailable))


def _is_error(result: Any, marker: str) -> bool:
    return marker in str(result)


class QueueUnavailable(Exception):
    """The stream was not tried: Redis failed a request path moments ago."""


class ReadingQueue:
    def __init__(
        self,
        redis: Redis,
        *,
        stream: str = STREAM,
        group: str = GROUP,
        dead_letter_stream: str = DEAD_LETTER_STREAM,
        max_length: int = MAX_STREAM_LENGTH,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self.dead_letter_stream = dead_letter_stream
        self.max_length = max_length
        self._group_ready = False
        self._recreated = False

    # -- setup ------------------------------------------------------------------------
    def check_group(self) -> None:
        """Create the stream and its group unless they exist, asking Redis even when this queue
        saw them before: a run starts with it, so a stream lost between runs is noticed before
        the sweep decides which jobs to ring."""
        self._group_ready = False
        self.ensure_group()

    def ensure_group(self) -> None:
        """Create the stream and its group (reading from the start) unless they exist."""
        if self._group_ready:
            return
        from upstash_redis.errors import UpstashError

        try:
            self.redis.xgroup_create(self.stream, self.group, "0", mkstream=True)
            # Created now: whatever the stream held before (if anything) is gone.
            self._recreated = True
        except UpstashError as exc:
            if not _is_error(exc, "BUSYGROUP"):
                raise
        self._group_ready = True

    @property
    def recreated(self) -> bool:
        """Whether this queue created the group since the last `take_recreated()`."""
        return self._recreated

    def take_recreated(self) -> bool:
        """True once after this queue had to create the group (the stream may have lost jobs)."""
        recreated, self._recreated = self._recreated, False
        return recreated

    def _with_group(self, call: Callable[[], T]) -> T:
        """`call()` on the group; where Redis reports the stream or group missing (NOGROUP), the
        group is created again and the call repeated once."""
        from upstash_redis.errors import UpstashError

        self.ensure_group()
        try:
            return call()
        except UpstashError as exc:
            if not _is_error(exc, "NOGROUP"):
                raise
        logger.warning("the stream or its group was missing in Redis: created again")
        self._group_ready = False
        self.ensure_group()
        return call()

    # -- producing --------------------------------------------------------------------
    def enqueue(self, job_ids: Sequence[str], *, request_path: bool = True) -> list[str]:
        """Add one entry per job id (one round trip); returns the entry ids.

        On a request path (the default) nothing is tried for a few seconds after Redis failed,
        and a failure starts that pause; the error is raised either way. The consumer passes
        `request_path=False`: it always tries."""
        if not job_ids:
            return []
        from shared.redis import redis_outage

        outage = redis_outage(self.redis)
        if request_path and outage.active():
            raise QueueUnavailable("Redis failed moments ago")
        pipeline: Any = self.redis.pipeline()
        for job_id in job_ids:
            pipeline.xadd(self.stream, "*", {JOB_FIELD: str(job_id)}, maxlen=self.max_length)
        try:
            return [str(r) for r in pipeline.exec()]
        except Exception:
            if request_path:
                outage.record_failure()
            raise

    def dead_letter(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Append one entry per dead-lettered job to the dead-letter stream (one round trip)."""
        if not records:
            return
        pipeline: Any = self.redis.pipeline()
        for record in records:
            fields = {str(k): "" if v is None else str(v) for k, v in record.items()}
            pipeline.xadd(self.dead_letter_stream, "*", fields, maxlen=self.max_length)
        pipeline.exec()

    # -- consuming --------------------------------------------------------------------
    def read(self, consumer: str, count: int) -> list[StreamEntry]:
        """Take up to `count` doorbells never delivered to any consumer of the group: read with
        NOACK (nothing stays pending) and deleted from the stream in a second round trip."""
        if count <= 0:
            return []
        raw = self._with_group(lambda: self.redis.xreadgroup(
            self.group, consumer, {self.stream: ">"}, count=count, noack=True))
        entries: list[StreamEntry] = []
        for stream in raw or []:
            entries.extend(_entries(stream[1] if len(stream) > 1 else None))
        if entries:
            # Already delivered, so never delivered again: deleting only keeps the stream short,
            # and a failure to delete costs nothing but room (MAX_STREAM_LENGTH bounds it).
            try:
                self.redis.xdel(self.stream, *[e.entry_id for e in entries])
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                logger.warning("read doorbells not deleted (%s)", type(exc).__name__)
        return entries

    # -- inspection -------------------------------------------------------------------
    def length(self) -> int:
        """Doorbells not yet read."""
        return int(self.redis.xlen(self.stream) or 0)

    def dead_letters(self, count: int = 100) -> list[dict[str, str]]:
        raw = self.redis.xrange(self.dead_letter_stream, "-", "+", count=count)
        return [_field_map(item[1]) for item in raw or [] if isinstance(item, list)]
