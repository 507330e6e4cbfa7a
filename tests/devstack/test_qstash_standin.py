"""The local QStash stand-in, driven by the real `qstash` client and checked by its Receiver."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from qstash import QStash, Receiver
from qstash.errors import QStashError, SignatureError
from qstash.receiver import verify_with_key
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devstack.qstash_standin import QStashStandinSettings, create_app
from devstack.qstash_standin.cron import CronError, parse_cron
from devstack.qstash_standin.timing import RetryDelay, default_backoff, parse_duration
from devstack.serve import ServerThread

FAST_RETRIES = 0.001  # one second of QStash's backoff curve lasts a millisecond here


@dataclass
class Received:
    path: str
    method: str
    headers: dict[str, str]
    body: bytes
    at: float


class Destination:
    """A receiver of our own: /ok/* answers 200, /fail/* 500, /flaky/<n>/* 500 n times."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/{rest:path}", self._handle,
                                           methods=["GET", "POST", "PUT", "DELETE", "PATCH"])])

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        with self._lock:
            self.requests.append(Received(path, request.method, dict(request.headers), body,
                                          time.time()))
            seen = sum(1 for r in self.requests if r.path == path)
        parts = path.strip("/").split("/")
        failing = parts[0] == "fail" or (parts[0] == "flaky" and seen <= int(parts[1]))
        return Response("nope" if failing else "ok", status_code=500 if failing else 200)

    def to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]


def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def destination() -> Iterator[tuple[Destination, str]]:
    receiver = Destination()
    with ServerThread(receiver.app, name="qstash-destination") as server:
        yield receiver, server.url


@pytest.fixture()
def standin() -> Iterator[tuple[QStashStandinSettings, QStash, str]]:
    settings = QStashStandinSettings(retry_base_seconds=FAST_RETRIES,
                                     schedule_interval_seconds=0.2)
    token = settings.token.get_secret_value()
    with (ServerThread(create_app(settings), name="qstash-standin") as server,
          qstash_client(token, server.url) as client):
        yield settings, client, server.url


@contextmanager
def qstash_client(token: str, base_url: str) -> Iterator[QStash]:
    client = QStash(token, base_url=base_url, retry=False)
    try:
        yield client
    finally:
        # The SDK has no close(); its httpx client would otherwise leak a socket per test.
        client.http._client.close()


def unique(prefix: str) -> str:
    return f"/{prefix}/{uuid.uuid4().hex}"


def local_report(base_url: str, settings: QStashStandinSettings, **filters: str) -> list[dict]:
    response = httpx.get(f"{base_url}/local/messages", params=filters,
                         headers={"Authorization": f"Bearer {settings.token.get_secret_value()}"})
    response.raise_for_status()
    return response.json()["messages"]


def test_published_message_arrives_signed_with_the_current_key(destination, standin):
    receiver, receiver_url = destination
    settings, client, _ = standin
    path = unique("ok")
    url = receiver_url + path

    result = client.message.publish_json(url=url, body={"max_jobs": 5},
                                         headers={"X-Trace": "t-1"})

    wait_until(lambda: len(receiver.to(path)) == 1)
    request = receiver.to(path)[0]
    assert request.method == "POST"
    assert request.body == b'{"max_jobs": 5}'
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-trace"] == "t-1"
    assert request.headers["upstash-message-id"] == result.message_id
    assert request.headers["upstash-retried"] == "0"
    assert request.headers["user-agent"] == "Upstash-QStash"
    signature = request.headers["upstash-signature"]
    keys = client.signing_key.get()
    assert keys.current == settings.current_signing_key.get_secret_value()
    Receiver(keys.current, keys.next).verify(signature=signature, body=request.body.decode(),
                                             url=url)
    verify_with_key(keys.current, signature=signature, body=request.body.decode(), url=url)
    with pytest.raises(SignatureError):
        verify_with_key(keys.current, signature=signature, body="{}", url=url)
    with pytest.raises(SignatureError):
        verify_with_key(keys.current, signature=signature, body=request.body.decode(),
                        url=receiver_url + "/elsewhere")


def test_after_rotation_deliveries_verify_with_the_former_next_key(destination, standin):
    receiver, receiver_url = destination
    _, client, _ = standin
    before = client.signing_key.get()

    rotated = client.signing_key.rotate()

    assert rotated.current == before.next
    assert rotated.next not in (before.current, before.next)
    path = unique("ok")
    client.message.publish(url=receiver_url + path, body="after rotation")
    wait_until(lambda: len(receiver.to(path)) == 1)
    signature = receiver.to(path)[0].headers["upstash-signature"]
    # A receiver still configured with the old pair accepts it through its next key.
    Receiver(before.current, before.next).verify(
        signature=signature, body="after rotation", url=receiver_url + path)
    with pytest.raises(SignatureError):
        verify_with_key(before.current, signature=signature, body="after rotation")


def test_failed_delivery_is_retried_with_backoff_until_it_succeeds(destination, standin):
    receiver, receiver_url = destination
    settings, client, base_url = standin
    path = "/flaky/2/" + uuid.uuid4().hex

    result = client.message.publish(url=receiver_url + path, body="job", retries=3)

    wait_until(lambda: len(receiver.to(path)) == 3)
    attempts = receiver.to(path)
    assert [r.headers["upstash-retried"] for r in attempts] == ["0", "1", "2"]
    assert {r.headers["upstash-message-id"] for r in attempts} == {result.message_id}
    first_gap, second_gap = (attempts[1].at - attempts[0].at, attempts[2].at - attempts[1].at)
    assert second_gap >= default_backoff(2) * FAST_RETRIES * 0.9
    assert second_gap > first_gap
    wait_until(lambda: local_report(base_url, settings, state="DELIVERED", url=receiver_url + path))
    (report,) = local_report(base_url, settings, url=receiver_url + path)
    assert [a["status"] for a in report["attempts"]] == [500, 500, 200]


def test_retries_stop_at_the_retry_limit(destination, standin):
    receiver, receiver_url = destination
    settings, client, base_url = standin
    path = unique("fail")

    client.message.publish(url=receiver_url + path, body="job", retries=1)

    wait_until(lambda: local_report(base_url, settings, state="FAILED", url=receiver_url + path))
    (report,) = local_report(base_url, settings, url=receiver_url + path)
    assert [a["status"] for a in report["attempts"]] == [500, 500]
    assert report["queued"] is False  # no further attempt is coming
    assert [r.headers["upstash-retried"] for r in receiver.to(path)] == ["0", "1"]


def test_delay_is_honoured(destination, standin):
    receiver, receiver_url = destination
    _, client, _ = standin
    path = unique("ok")
    published_at = time.time()

    result = client.message.publish(url=receiver_url + path, body="later", delay="1s")

    pending = client.message.get(result.message_id)
    assert pending.url == receiver_url + path
    assert pending.not_before >= int(published_at * 1000) + 1000 - 5
    wait_until(lambda: len(receiver.to(path)) == 1, timeout=4)
    assert receiver.to(path)[0].at - published_at >= 1.0


def test_deduplication_id_delivers_once(destination, standin):
    receiver, receiver_url = destination
    settings, client, base_url = standin
    path = unique("ok")

    first = client.message.publish(url=receiver_url + path, body="a", deduplication_id="d-1")
    second = client.message.publish(url=receiver_url + path, body="a", deduplication_id="d-1")

    assert second.message_id == first.message_id
    assert (first.deduplicated, second.deduplicated) == (False, True)
    wait_until(lambda: local_report(base_url, settings, state="DELIVERED", url=receiver_url + path))
    # One message, delivered, nothing queued: no second delivery can come.
    (report,) = local_report(base_url, settings, url=receiver_url + path)
    assert (report["messageId"], report["queued"]) == (first.message_id, False)
    assert len(receiver.to(path)) == 1


def test_schedule_at_an_interval_delivers_repeatedly_and_stops_when_deleted(destination, standin):
    receiver, receiver_url = destination
    settings, client, base_url = standin
    path = unique("ok")

    schedule_id = client.schedule.create_json(destination=receiver_url + path, cron="* * * * *",
                                              body={"max_jobs": 10})

    assert [s.schedule_id for s in client.schedule.list()] == [schedule_id]
    assert client.schedule.get(schedule_id).destination == receiver_url + path
    wait_until(lambda: len(receiver.to(path)) >= 3)
    assert {r.headers["upstash-schedule-id"] for r in receiver.to(path)} == {schedule_id}
    assert receiver.to(path)[0].body == b'{"max_jobs": 10}'
    client.schedule.delete(schedule_id)
    assert client.schedule.list() == []
    # The schedule is gone, so it makes no new message; once every message it made is finished
    # (a firing already in flight may still land), nothing more can reach the destination.
    wait_until(lambda: all(m["state"] == "DELIVERED" and not m["queued"] for m in
                           local_report(base_url, settings, scheduleId=schedule_id)))
    fired = local_report(base_url, settings, scheduleId=schedule_id)
    assert len(receiver.to(path)) == len(fired) >= 3


def test_cron_schedule_fires_at_the_next_matching_minute(destination):
    _, receiver_url = destination
    settings = QStashStandinSettings()
    token = settings.token.get_secret_value()
    with (ServerThread(create_app(settings)) as server,
          qstash_client(token, server.url) as client):
        schedule_id = client.schedule.create(destination=receiver_url + "/ok/cron",
                                             cron="*/5 * * * *")
        schedule = client.schedule.get(schedule_id)
        with pytest.raises(QStashError):
            client.schedule.create(destination=receiver_url + "/ok/cron", cron="61 * * * *")
    assert schedule.cron == "*/5 * * * *"
    assert schedule.next_schedule_time is not None
    next_fire = datetime.fromtimestamp(schedule.next_schedule_time / 1000, UTC)
    assert next_fire.minute % 5 == 0 and next_fire.second == 0
    assert 0 < schedule.next_schedule_time / 1000 - time.time() <= 300


def test_requests_without_the_token_are_refused(standin):
    _, _, base_url = standin
    response = httpx.post(f"{base_url}/v2/publish/http://127.0.0.1:9/x", content=b"x")
    assert response.status_code == 401
    with qstash_client("wrong", base_url) as client, pytest.raises(QStashError):
        client.message.publish(url="http://127.0.0.1:9/x", body="x")


def test_cron_expressions_follow_cron_semantics():
    weekdays = parse_cron("*/15 9-17 * * MON-FRI")
    friday_evening = datetime(2026, 1, 2, 17, 50, tzinfo=UTC)
    assert weekdays.next_after(friday_evening) == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    bangkok = parse_cron("CRON_TZ=Asia/Bangkok 0 7 * * *")
    assert bangkok.next_after(friday_evening) == datetime(2026, 1, 3, 0, 0, tzinfo=UTC)
    either_day = parse_cron("0 0 13 * FRI")
    assert either_day.next_after(friday_evening) == datetime(2026, 1, 9, 0, 0, tzinfo=UTC)
    for invalid in ("* * * *", "60 * * * *", "0 0 30 2 *", "*/0 * * * *"):
        with pytest.raises(CronError):
            parse_cron(invalid)


def test_durations_and_retry_delay_expressions():
    assert parse_duration("1h30m") == 5400
    assert parse_duration("10s") == 10
    assert parse_duration("45") == 45
    with pytest.raises(ValueError):
        parse_duration("10 minutes")
    assert RetryDelay("1000 * (1 + retried)").seconds(1) == 2.0
    assert RetryDelay("max(10, pow(2, retried))").seconds(0) == 0.01
    assert RetryDelay("pow(10, 1000)").seconds(0) == 86400
    with pytest.raises(ValueError):
        RetryDelay("__import__('os').getcwd()")
    assert default_backoff(1) == pytest.approx(12.18, abs=0.01)
    assert default_backoff(10) == 86400
