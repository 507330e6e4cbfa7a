"""The reading queue: a Redis stream with one consumer group, over upstash-redis (REST).

The stream only delivers job ids; Postgres decides what an entry means (shared/consumer.py).
An entry stays pending in the group until it is acknowledged, which the consumer does only
after the SQL transaction that settled its job committed. Entries a dead consumer left pending
are taken over with XAUTOCLAIM once they have been idle longer than the visibility timeout.
Acknowledged entries are deleted as well, so the stream holds only undelivered or pending work.
Every batch is one REST round trip (a pipeline where several commands are needed).

Redis may lose the stream and its group (flushed, or a new empty instance): wherever Redis
answers NOGROUP the group is created again, the call repeated once, and `take_recreated()`
tells the consumer to stream every open job again from Postgres (the entries that were in the
lost stream are gone). Producing on a request path skips Redis for a few seconds after it failed
(`shared.redis.redis_outage`), so an outage costs one request at most about a second.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from upstash_redis import Redis


logger = logging.getLogger("mimivibe.queue")

STREAM = "mimivibe:readings"
GROUP = "job-consumer"
DEAD_LETTER_STREAM = "mimivibe:readings:dead-letter"
# Trimming bounds the streams if acknowledgements ever stop; it never trims in normal operation.
MAX_STREAM_LENGTH = 100_000
JOB_FIELD = "job_id"
T = TypeVar("T")


@dataclass(frozen=True)
class StreamEntry:
    entry_id: str
    # None when the entry was trimmed away while pending, or carries no job id.
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
        """Up to `count` entries never delivered to any consumer of the group."""
        if count <= 0:
            return []
        raw = self._with_group(lambda: self.redis.xreadgroup(
            self.group, consumer, {self.stream: ">"}, count=count))
        entries: list[StreamEntry] = []
        for stream in raw or []:
            entries.extend(_entries(stream[1] if len(stream) > 1 else None))
        return entries

    def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[StreamEntry]:
        """Take over up to `count` entries pending longer than `min_idle_ms` (XAUTOCLAIM)."""
        claimed: list[StreamEntry] = []
        cursor = "0-0"
        # Each call scans a bounded part of the pending list; stop at its end or when full.
        for _ in range(100):
            if len(claimed) >= count:
                break
            raw: Any = self._with_group(functools.partial(
                self.redis.xautoclaim, self.stream, self.group, consumer, min_idle_ms, cursor,
                count=count - len(claimed)))
            if not isinstance(raw, list) or len(raw) < 2:
                break
            claimed.extend(_entries(raw[1]))
            cursor = str(raw[0])
            if cursor == "0-0":
                break
        return claimed

    def ack(self, entry_ids: Iterable[str]) -> int:
        """Acknowledge and delete entries (one round trip); returns how many were pending."""
        ids = list(dict.fromkeys(entry_ids))
        if not ids:
            return 0
        def ack_and_delete() -> int:
            pipeline: Any = self.redis.pipeline()
            pipeline.xack(self.stream, self.group, *ids)
            pipeline.xdel(self.stream, *ids)
            acked, _ = pipeline.exec()
            return int(acked or 0)

        return self._with_group(ack_and_delete)

    # -- inspection -------------------------------------------------------------------
    def pending_count(self) -> int:
        """Entries delivered to some consumer and not yet acknowledged."""
        summary = self._with_group(lambda: self.redis.xpending(self.stream, self.group))
        return int(summary[0]) if isinstance(summary, list) and summary else 0

    def length(self) -> int:
        return int(self.redis.xlen(self.stream) or 0)

    def dead_letters(self, count: int = 100) -> list[dict[str, str]]:
        raw = self.redis.xrange(self.dead_letter_stream, "-", "+", count=count)
        return [_field_map(item[1]) for item in raw or [] if isinstance(item, list)]
