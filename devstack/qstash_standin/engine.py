"""The stand-in's state and its two background loops: delivery (with retries) and schedules.

Everything runs on the server's event loop, so the state needs no locks. The delivery loop keeps
a heap of due messages and starts one task per delivery attempt; the schedule loop creates a
message each time a schedule fires.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import httpx

from devstack.qstash_standin.cron import CronSchedule
from devstack.qstash_standin.model import (
    RESPONSE_BODY_LIMIT,
    Attempt,
    Message,
    MessageSpec,
    Schedule,
)
from devstack.qstash_standin.settings import QStashStandinSettings, new_signing_key, random_id
from devstack.qstash_standin.signing import sign_delivery
from devstack.qstash_standin.timing import default_backoff

_IDLE_WAIT_SECONDS = 1.0


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Sleep until `event` is set (state changed) or `seconds` pass."""
    event.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=max(0.0, seconds))


class QStashEngine:
    def __init__(self, settings: QStashStandinSettings) -> None:
        self.settings = settings
        self.current_signing_key = settings.current_signing_key.get_secret_value()
        self.next_signing_key = settings.next_signing_key.get_secret_value()
        self.messages: dict[str, Message] = {}
        self.schedules: dict[str, Schedule] = {}
        self._dedup: dict[str, str] = {}
        self._due: list[tuple[float, int, str]] = []
        self._sequence = itertools.count()
        self._wake = asyncio.Event()
        self._schedules_changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    # Lifecycle (the app's lifespan) ---------------------------------------------------------

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=self.settings.delivery_timeout_seconds, follow_redirects=False)
        self._spawn(self._delivery_loop())
        self._spawn(self._schedule_loop())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # Signing keys ---------------------------------------------------------------------------

    def rotate_keys(self) -> None:
        """QStash's rotation: the next key becomes current and a new next key is made."""
        self.current_signing_key, self.next_signing_key = self.next_signing_key, new_signing_key()

    # Messages -------------------------------------------------------------------------------

    def publish(self, spec: MessageSpec, *, caller_ip: str | None = None,
                schedule_id: str | None = None) -> tuple[Message, bool]:
        """Accept a message; with a known deduplication id, return the original instead."""
        if spec.deduplication_id is not None:
            existing = self._dedup.get(spec.deduplication_id)
            if existing is not None:
                return self.messages[existing], True
        now = time.time()
        due = spec.not_before if spec.not_before is not None else now + spec.delay_seconds
        message = Message(message_id=random_id("msg_", 40), spec=spec, due_at=due,
                          caller_ip=caller_ip, schedule_id=schedule_id, created_at=now)
        self.messages[message.message_id] = message
        if spec.deduplication_id is not None:
            self._dedup[spec.deduplication_id] = message.message_id
        self._enqueue(message, due)
        self._prune()
        return message, False

    def _prune(self) -> None:
        # A long-running local stack publishes every few seconds: forget the oldest finished
        # messages (and their deduplication ids, like QStash's window) beyond the limit.
        excess = len(self.messages) - self.settings.max_kept_messages
        if excess <= 0:
            return
        for message_id in [m.message_id for m in self.messages.values() if m.finished][:excess]:
            message = self.messages.pop(message_id)
            if message.spec.deduplication_id is not None:
                self._dedup.pop(message.spec.deduplication_id, None)

    def cancel(self, message_id: str) -> bool:
        message = self.messages.get(message_id)
        if message is None or message.finished:
            return False
        message.state = "CANCELED"
        return True

    def queued(self) -> set[str]:
        """The ids of the messages waiting for a delivery attempt (new, delayed or retrying)."""
        return {message_id for _, _, message_id in self._due}

    def _enqueue(self, message: Message, due: float) -> None:
        message.due_at = due
        heapq.heappush(self._due, (due, next(self._sequence), message.message_id))
        self._wake.set()

    async def _delivery_loop(self) -> None:
        while True:
            now = time.time()
            while self._due and self._due[0][0] <= now:
                _, _, message_id = heapq.heappop(self._due)
                message = self.messages.get(message_id)
                if message is not None and message.state != "CANCELED":
                    message.state = "ACTIVE"
                    self._spawn(self._deliver(message))
            wait = self._due[0][0] - now if self._due else _IDLE_WAIT_SECONDS
            await _wait(self._wake, wait)

    async def _deliver(self, message: Message) -> None:
        assert self._client is not None
        spec = message.spec
        headers = {
            **spec.headers,
            "User-Agent": "Upstash-QStash",
            "Upstash-Message-Id": message.message_id,
            "Upstash-Retried": str(message.retried),
            "Upstash-Signature": sign_delivery(
                self.current_signing_key, url=spec.url, body=spec.body,
                ttl_seconds=self.settings.signature_ttl_seconds),
        }
        if message.schedule_id:
            headers["Upstash-Schedule-Id"] = message.schedule_id
        if message.caller_ip:
            headers["Upstash-Caller-Ip"] = message.caller_ip
        attempt = Attempt(retried=message.retried, started_at=time.time())
        message.attempts.append(attempt)
        started = time.monotonic()
        non_retryable = False
        try:
            response = await self._client.request(
                spec.method, spec.url, headers=headers, content=spec.body or None,
                timeout=spec.timeout_seconds or self.settings.delivery_timeout_seconds)
            attempt.status = response.status_code
            attempt.response_body = response.text[:RESPONSE_BODY_LIMIT]
            # QStash stops retrying on 489 with this header.
            non_retryable = (response.status_code == 489 and response.headers.get(
                "Upstash-NonRetryable-Error", "").lower() == "true")
        except httpx.HTTPError as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"
        attempt.duration_ms = int((time.monotonic() - started) * 1000)
        if message.state == "CANCELED":
            return
        if attempt.status is not None and 200 <= attempt.status < 300:
            message.state = "DELIVERED"
        elif non_retryable or message.retried >= spec.retries:
            message.state = "FAILED"
            if attempt.error is None:
                attempt.error = f"destination responded {attempt.status}"
        else:
            message.retried += 1
            message.state = "RETRY"
            self._enqueue(message, time.time() + self._retry_delay(message))

    def _retry_delay(self, message: Message) -> float:
        spec = message.spec
        seconds = (spec.retry_delay.seconds(message.retried - 1) if spec.retry_delay
                   else default_backoff(message.retried))
        return seconds * self.settings.retry_base_seconds

    # Schedules ------------------------------------------------------------------------------

    def create_schedule(self, spec: MessageSpec, cron: str, cron_schedule: CronSchedule, *,
                        schedule_id: str | None = None,
                        caller_ip: str | None = None) -> Schedule:
        """Create a schedule, or replace the one with the same id (Upstash-Schedule-Id)."""
        now = time.time()
        schedule = Schedule(
            schedule_id=schedule_id or random_id("scd_"), cron=cron,
            cron_schedule=cron_schedule, spec=spec, next_at=0.0, caller_ip=caller_ip,
            created_at=now,
        )
        previous = self.schedules.get(schedule.schedule_id)
        if previous is not None:
            schedule.created_at = previous.created_at
        schedule.next_at = self._next_fire(schedule, now)
        self.schedules[schedule.schedule_id] = schedule
        self._schedules_changed.set()
        return schedule

    def delete_schedule(self, schedule_id: str) -> bool:
        found = self.schedules.pop(schedule_id, None) is not None
        self._schedules_changed.set()
        return found

    def set_paused(self, schedule_id: str, paused: bool) -> bool:
        schedule = self.schedules.get(schedule_id)
        if schedule is None:
            return False
        if schedule.paused and not paused:
            schedule.next_at = self._next_fire(schedule, time.time())
        schedule.paused = paused
        self._schedules_changed.set()
        return True

    def _next_fire(self, schedule: Schedule, after: float) -> float:
        interval = self.settings.schedule_interval_seconds
        if interval is not None:
            return after + interval
        moment = datetime.fromtimestamp(after, UTC)
        return schedule.cron_schedule.next_after(moment).timestamp()

    async def _schedule_loop(self) -> None:
        while True:
            now = time.time()
            for schedule in list(self.schedules.values()):
                if schedule.paused or schedule.next_at > now:
                    continue
                message, _ = self.publish(schedule.spec, caller_ip=schedule.caller_ip,
                                          schedule_id=schedule.schedule_id)
                schedule.last_at = now
                schedule.last_message_ids = [message.message_id]
                # Missed firings are not replayed: the next one is computed from now.
                schedule.next_at = self._next_fire(schedule, max(now, schedule.next_at))
            pending = [s.next_at for s in self.schedules.values() if not s.paused]
            wait = min(min(pending, default=now + _IDLE_WAIT_SECONDS) - now, _IDLE_WAIT_SECONDS)
            await _wait(self._schedules_changed, wait)
