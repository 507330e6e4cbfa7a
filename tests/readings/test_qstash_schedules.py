"""The declared QStash schedules, applied with the real qstash client to the QStash stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from devstack.qstash_standin import QStashStandinSettings, create_app
from devstack.serve import ServerThread
from ops.qstash_schedules import PlanError, ScheduleFile, apply, destinations, load
from shared.qstash_client import build_qstash

TOKEN = "qstash-schedules-test-token"
CONSUMER = "https://consumer.example.test/"


@pytest.fixture
def client() -> Iterator[Any]:
    with ServerThread(create_app(QStashStandinSettings(token=SecretStr(TOKEN))),
                      name="qstash") as server:
        qstash = build_qstash(SecretStr(TOKEN), server.url)
        yield qstash
        qstash.http._client.close()


def schedules(client) -> dict[str, Any]:
    return {s.schedule_id: s for s in client.schedule.list()}


def test_the_declared_schedules_wake_the_job_consumer_every_minute():
    declared = load()

    [consumer] = declared.schedules
    assert (consumer.id, consumer.destination, consumer.cron) == (
        "mimivibe-job-consumer", "JOB_CONSUMER_URL", "* * * * *")


def test_applying_creates_then_updates_in_place(client):
    declared = load()
    urls = destinations(declared, {"JOB_CONSUMER_URL": CONSUMER})

    assert apply(client, declared, urls) == [
        "create mimivibe-job-consumer: * * * * * -> " + CONSUMER]
    changed = ScheduleFile.model_validate(
        {"schedules": [{**declared.schedules[0].model_dump(), "cron": "*/5 * * * *"}]})
    assert apply(client, changed, urls)[0].startswith("update mimivibe-job-consumer")

    found = schedules(client)
    assert list(found) == ["mimivibe-job-consumer"]
    assert (found["mimivibe-job-consumer"].cron, found["mimivibe-job-consumer"].destination) == (
        "*/5 * * * *", CONSUMER)


def test_prune_removes_only_undeclared_project_schedules(client):
    client.schedule.create(destination=CONSUMER, cron="0 * * * *", schedule_id="mimivibe-old")
    client.schedule.create(destination=CONSUMER, cron="0 * * * *", schedule_id="someone-else")
    declared = load()
    urls = destinations(declared, {"JOB_CONSUMER_URL": CONSUMER})

    planned = apply(client, declared, urls, prune=True, dry_run=True)
    assert set(schedules(client)) == {"mimivibe-old", "someone-else"}
    done = apply(client, declared, urls, prune=True)

    assert planned == done and "delete mimivibe-old" in done
    assert set(schedules(client)) == {"mimivibe-job-consumer", "someone-else"}


def test_a_missing_destination_is_refused_before_anything_is_applied():
    with pytest.raises(PlanError):
        destinations(load(), {})
