"""Messages, schedules and delivery attempts, and the publish headers that describe them."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from devstack.qstash_standin.cron import CronSchedule
from devstack.qstash_standin.timing import RetryDelay, parse_duration

METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH"})
FORWARD_PREFIX = "upstash-forward-"
# Features of QStash this stand-in does not implement: refused loudly rather than ignored.
UNSUPPORTED = ("upstash-callback", "upstash-failure-callback", "upstash-queue-name")
RESPONSE_BODY_LIMIT = 2048


class SpecError(ValueError):
    """A publish or schedule request QStash would refuse (HTTP 400)."""


def _canonical(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


@dataclass(frozen=True)
class MessageSpec:
    """Everything a publish (or a schedule, for each message it creates) asks for."""

    url: str
    body: bytes
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)  # forwarded to the destination
    retries: int = 3
    retry_delay: RetryDelay | None = None
    delay_seconds: float = 0.0
    not_before: float | None = None
    deduplication_id: str | None = None
    timeout_seconds: float | None = None
    label: str | None = None

    @classmethod
    def from_headers(cls, url: str, body: bytes, headers: Mapping[str, str], *,
                     default_retries: int) -> MessageSpec:
        """Read QStash's `Upstash-*` request headers (names compared case-insensitively)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        if not url.startswith(("http://", "https://")):
            raise SpecError("destination must be an http(s) URL (URL groups are not supported)")
        for name in UNSUPPORTED:
            if name in lowered:
                raise SpecError(f"{_canonical(name)} is not supported by the local QStash")
        method = lowered.get("upstash-method", "POST").upper()
        if method not in METHODS:
            raise SpecError(f"invalid Upstash-Method {method!r}")
        forwarded = {
            _canonical(k[len(FORWARD_PREFIX):]): v
            for k, v in lowered.items() if k.startswith(FORWARD_PREFIX)
        }
        if "content-type" in lowered:
            forwarded["Content-Type"] = lowered["content-type"]
        try:
            retries = int(lowered.get("upstash-retries", default_retries))
            delay = parse_duration(lowered["upstash-delay"]) if "upstash-delay" in lowered else 0.0
            not_before = (float(lowered["upstash-not-before"])
                          if "upstash-not-before" in lowered else None)
            timeout = (parse_duration(lowered["upstash-timeout"])
                       if "upstash-timeout" in lowered else None)
            retry_delay = (RetryDelay(lowered["upstash-retry-delay"])
                           if "upstash-retry-delay" in lowered else None)
        except ValueError as exc:
            raise SpecError(str(exc)) from None
        if not 0 <= retries <= 100:
            raise SpecError("Upstash-Retries must be between 0 and 100")
        dedup = lowered.get("upstash-deduplication-id")
        if dedup is None and lowered.get("upstash-content-based-deduplication", "") == "true":
            dedup = _content_dedup_id(url, body, forwarded)
        return cls(
            url=url, body=body, method=method, headers=forwarded, retries=retries,
            retry_delay=retry_delay, delay_seconds=delay, not_before=not_before,
            deduplication_id=dedup, timeout_seconds=timeout, label=lowered.get("upstash-label"),
        )


def _content_dedup_id(url: str, body: bytes, headers: Mapping[str, str]) -> str:
    # QStash derives it from the destination, the body and the headers.
    digest = hashlib.sha256(url.encode())
    digest.update(body)
    for name in sorted(headers):
        digest.update(f"{name}:{headers[name]}".encode())
    return "content:" + digest.hexdigest()


def _body_fields(body: bytes) -> dict[str, str]:
    try:
        return {"body": body.decode()}
    except UnicodeDecodeError:
        return {"bodyBase64": base64.b64encode(body).decode()}


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


@dataclass
class Attempt:
    retried: int
    started_at: float
    status: int | None = None
    error: str | None = None
    response_body: str | None = None
    duration_ms: int = 0

    def to_json(self) -> dict[str, object]:
        return {"retried": self.retried, "time": _ms(self.started_at), "status": self.status,
                "error": self.error, "responseBody": self.response_body,
                "durationMs": self.duration_ms}


@dataclass
class Message:
    """One message, its state (CREATED, ACTIVE, RETRY, DELIVERED, FAILED, CANCELED) and attempts."""

    message_id: str
    spec: MessageSpec
    due_at: float
    caller_ip: str | None = None
    schedule_id: str | None = None
    created_at: float = field(default_factory=time.time)
    state: str = "CREATED"
    retried: int = 0
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.state in ("DELIVERED", "FAILED", "CANCELED")

    def to_json(self) -> dict[str, object]:
        """The shape of QStash's GET /v2/messages/{id}."""
        view: dict[str, object] = {
            "messageId": self.message_id, "url": self.spec.url, "method": self.spec.method,
            "header": {k: [v] for k, v in self.spec.headers.items()},
            "maxRetries": self.spec.retries, "notBefore": _ms(self.due_at),
            "createdAt": _ms(self.created_at), "callerIP": self.caller_ip,
            **_body_fields(self.spec.body),
        }
        if self.schedule_id:
            view["scheduleId"] = self.schedule_id
        if self.spec.retry_delay:
            view["retryDelayExpression"] = self.spec.retry_delay.expression
        if self.spec.label:
            view["label"] = self.spec.label
        return view

    def report(self) -> dict[str, object]:
        """Local-only view for tests: the message with its state and every attempt."""
        return {**self.to_json(), "state": self.state, "retried": self.retried,
                "attempts": [a.to_json() for a in self.attempts]}


@dataclass
class Schedule:
    schedule_id: str
    cron: str
    cron_schedule: CronSchedule
    spec: MessageSpec
    next_at: float
    caller_ip: str | None = None
    created_at: float = field(default_factory=time.time)
    paused: bool = False
    last_at: float | None = None
    last_message_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The shape of QStash's GET /v2/schedules/{id}."""
        view: dict[str, object] = {
            "scheduleId": self.schedule_id, "destination": self.spec.url, "cron": self.cron,
            "createdAt": _ms(self.created_at), "method": self.spec.method,
            "header": {k: [v] for k, v in self.spec.headers.items()},
            "retries": self.spec.retries, "delay": int(self.spec.delay_seconds),
            "callerIP": self.caller_ip, "isPaused": self.paused,
            "nextScheduleTime": None if self.paused else _ms(self.next_at),
            **_body_fields(self.spec.body),
        }
        if self.last_at is not None:
            view["lastScheduleTime"] = _ms(self.last_at)
        if self.spec.timeout_seconds is not None:
            view["timeout"] = int(self.spec.timeout_seconds)
        if self.spec.retry_delay:
            view["retryDelayExpression"] = self.spec.retry_delay.expression
        if self.spec.label:
            view["label"] = self.spec.label
        return view
