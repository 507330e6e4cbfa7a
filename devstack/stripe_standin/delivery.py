"""Webhook delivery: signed POSTs from background tasks, retries with capped exponential
backoff, and the knobs tests need (duplicates, delay, hold and release in a chosen order,
secret rotation, per-attempt log).

Every attempt goes through one queue served by `delivery_concurrency` workers, so with one
worker the queue order is the delivery order."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from devstack.stripe_standin.settings import StripeStandinSettings
from devstack.stripe_standin.signing import signature_header

log = logging.getLogger(__name__)
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


@dataclass
class SigningSecret:
    value: str
    expires_at: float | None = None


@dataclass
class DeliveryMode:
    duplicates: int = 1
    delay: float = 0.0
    hold: bool = False


@dataclass
class Attempt:
    event_id: str
    copy: int
    attempt: int
    url: str
    status: int | None
    error: str | None
    response_body: str
    signature: str
    sent_at: float
    duration_ms: float


@dataclass(frozen=True)
class _Job:
    event_id: str
    copy: int
    attempt: int = 1


@dataclass
class _Runtime:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[_Job]
    client: httpx.AsyncClient
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    timers: set[asyncio.TimerHandle] = field(default_factory=set)


class Dispatcher:
    def __init__(self, settings: StripeStandinSettings,
                 render: Callable[[str], bytes | None]) -> None:
        self._settings = settings
        self._render = render
        self._lock = threading.Lock()
        self.url = settings.webhook_url
        self._secrets = [SigningSecret(settings.webhook_secret.get_secret_value())]
        self.mode = DeliveryMode()
        self._held: list[str] = []
        self._attempts: dict[str, list[Attempt]] = {}
        self._delivered: set[str] = set()
        self._outstanding = 0
        self._early: list[tuple[_Job, float]] = []
        self._runtime: _Runtime | None = None

    # Configuration -------------------------------------------------------------------------

    def set_endpoint(self, url: str | None, secret: str | None = None) -> None:
        with self._lock:
            self.url = url
            if secret is not None:
                self._secrets = [SigningSecret(secret)]

    def rotate(self, new_secret: str, expire_previous_after: float) -> None:
        """Roll the signing secret; the previous ones keep signing until they expire."""
        expires_at = time.time() + expire_previous_after
        with self._lock:
            for secret in self._secrets:
                if secret.expires_at is None or secret.expires_at > expires_at:
                    secret.expires_at = expires_at
            self._secrets.insert(0, SigningSecret(new_secret))

    def active_secrets(self) -> list[SigningSecret]:
        now = time.time()
        with self._lock:
            self._secrets = [s for s in self._secrets if s.expires_at is None
                             or s.expires_at > now]
            return list(self._secrets)

    def set_mode(self, mode: DeliveryMode) -> None:
        with self._lock:
            self.mode = mode

    # Submission ----------------------------------------------------------------------------

    def endpoint_count(self) -> int:
        return 1 if self.url else 0

    def submit(self, event_id: str) -> None:
        with self._lock:
            if not self.url:
                return
            if self.mode.hold:
                self._held.append(event_id)
                return
            duplicates, delay = self.mode.duplicates, self.mode.delay
        self._schedule(event_id, duplicates, delay)

    def resend(self, event_id: str, times: int = 1) -> None:
        self._schedule(event_id, times, 0.0)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def release(self, event_ids: list[str] | None = None, order: str = "as_created",
                seed: int | None = None) -> list[str]:
        """Deliver held events: the given ids in the given order (others stay held), or all."""
        with self._lock:
            if event_ids is None:
                chosen, self._held = list(self._held), []
            else:
                unknown = [e for e in event_ids if e not in self._held]
                if unknown:
                    raise KeyError(", ".join(unknown))
                chosen = list(event_ids)
                self._held = [e for e in self._held if e not in chosen]
            duplicates = self.mode.duplicates
        if order == "reverse":
            chosen.reverse()
        elif order == "shuffle":
            random.Random(seed).shuffle(chosen)  # noqa: S311 - test ordering, not secrecy
        for event_id in chosen:
            self._schedule(event_id, duplicates, 0.0)
        return chosen

    def _schedule(self, event_id: str, copies: int, delay: float) -> None:
        for copy in range(copies):
            self._enqueue(_Job(event_id, copy), delay)

    def _enqueue(self, job: _Job, delay: float) -> None:
        with self._lock:
            self._outstanding += 1
            runtime = self._runtime
            if runtime is None:
                self._early.append((job, delay))
                return
        runtime.loop.call_soon_threadsafe(self._put, runtime, job, delay)

    def _put(self, runtime: _Runtime, job: _Job, delay: float) -> None:
        if delay <= 0:
            runtime.queue.put_nowait(job)
            return

        def fire() -> None:
            runtime.timers.discard(handle)
            runtime.queue.put_nowait(job)

        handle = runtime.loop.call_later(delay, fire)
        runtime.timers.add(handle)

    # Lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        runtime = _Runtime(asyncio.get_running_loop(), asyncio.Queue(),
                           httpx.AsyncClient(timeout=self._settings.delivery_timeout))
        runtime.workers = [asyncio.create_task(self._worker(runtime))
                           for _ in range(self._settings.delivery_concurrency)]
        with self._lock:
            self._runtime = runtime
            early, self._early = self._early, []
        for job, delay in early:
            self._put(runtime, job, delay)

    async def stop(self) -> None:
        with self._lock:
            runtime, self._runtime = self._runtime, None
        if runtime is None:
            return
        for timer in runtime.timers:
            timer.cancel()
        for task in runtime.workers:
            task.cancel()
        await asyncio.gather(*runtime.workers, return_exceptions=True)
        await runtime.client.aclose()

    async def _worker(self, runtime: _Runtime) -> None:
        while True:
            job = await runtime.queue.get()
            retry_in: float | None = None
            try:
                retry_in = await self._attempt(runtime.client, job)
            except Exception:
                log.exception("webhook delivery of %s failed unexpectedly", job.event_id)
            if retry_in is None:
                with self._lock:
                    self._outstanding -= 1
            else:
                self._put(runtime, _Job(job.event_id, job.copy, job.attempt + 1), retry_in)

    async def _attempt(self, client: httpx.AsyncClient, job: _Job) -> float | None:
        url = self.url
        body = self._render(job.event_id)
        if not url or body is None:
            return None
        header = signature_header(body, [s.value for s in self.active_secrets()])
        started, sent_at = time.monotonic(), time.time()
        status: int | None = None
        error: str | None = None
        response_body = ""
        try:
            response = await client.post(url, content=body, headers={
                "Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
                "Stripe-Signature": header, "Cache-Control": "no-cache", "Accept": "*/*; q=0.5"})
            status, response_body = response.status_code, response.text[:2000]
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        attempt = Attempt(job.event_id, job.copy, job.attempt, url, status, error,
                          response_body, header, sent_at,
                          round((time.monotonic() - started) * 1000, 2))
        ok = status is not None and 200 <= status < 300
        with self._lock:
            self._attempts.setdefault(job.event_id, []).append(attempt)
            if ok:
                self._delivered.add(job.event_id)
        if ok or job.attempt > self._settings.max_retries:
            return None
        delay = self._settings.retry_base_delay * 2 ** (job.attempt - 1)
        return min(delay, self._settings.retry_max_delay)

    # Inspection ----------------------------------------------------------------------------

    def attempts(self, event_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(a) for a in self._attempts.get(event_id, [])]

    def delivered(self, event_id: str) -> bool:
        with self._lock:
            return event_id in self._delivered

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"outstanding": self._outstanding, "held": len(self._held),
                    "delivered": len(self._delivered), "url": self.url,
                    "running": self._runtime is not None}


def wait_quiet(dispatcher: Dispatcher, timeout: float) -> bool:
    """Block until nothing is queued, in flight or waiting for a retry (held events aside)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dispatcher.status()["outstanding"] == 0:
            return True
        time.sleep(0.02)
    return dispatcher.status()["outstanding"] == 0

