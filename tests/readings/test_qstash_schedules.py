"""The declared QStash schedules, applied with the real qstash client to the QStash stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from devstack.qstash_standin import QStashStandinSettings, create_app
from devstack.serve import ServerThread
from ops.qstash_schedules import PlanError, ScheduleFile, apply, destinations, load
from shared.consumer import ConsumeRequest
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

    by_id = {s.id: s for s in declared.schedules}
    consumer = by_id["mimivibe-job-consumer"]
    assert (consumer.id, consumer.destination, consumer.cron) == (
        "mimivibe-job-consumer", "JOB_CONSUMER_URL", "* * * * *")
    assert consumer.local


def test_the_reconciliation_runs_hourly_through_the_job_consumer_but_not_locally():
    declared = load()
    reconcile = {s.id: s for s in declared.schedules}["mimivibe-reconcile"]

    assert (reconcile.destination, reconcile.cron) == ("JOB_CONSUMER_URL", "17 * * * *")
    assert ConsumeRequest.model_validate(reconcile.body).task == "reconcile"
    assert reconcile.timeout == "300s" and not reconcile.local
    assert "mimivibe-reconcile" not in {s.id for s in declared.for_local_stack().schedules}


def test_invites_expire_on_a_schedule_of_their_own_also_locally():
    declared = load()
    expire = {s.id: s for s in declared.schedules}["mimivibe-expire-invites"]

    assert (expire.destination, expire.cron) == ("JOB_CONSUMER_URL", "*/15 * * * *")
    assert ConsumeRequest.model_validate(expire.body).task == "expire_invites"
    assert "mimivibe-expire-invites" in {s.id for s in declared.for_local_stack().schedules}


def test_applying_creates_then_updates_in_place(client):
    declared = load()
    urls = destinations(declared, {"JOB_CONSUMER_URL": CONSUMER})

    assert apply(client, declared, urls) == [
        f"create {s.id}: {s.cron} -> " + CONSUMER for s in declared.schedules]
    consumer = {s.id: s for s in declared.schedules}["mimivibe-job-consumer"]
    changed = ScheduleFile.model_validate(
        {"schedules": [{**consumer.model_dump(), "cron": "*/5 * * * *"}]})
    assert apply(client, changed, urls)[0].startswith("update mimivibe-job-consumer")

    found = schedules(client)
    assert set(found) == {s.id for s in declared.schedules}
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
    assert set(schedules(client)) == {s.id for s in declared.schedules} | {"someone-else"}


def test_a_missing_destination_is_refused_before_anything_is_applied():
    with pytest.raises(PlanError):
        destinations(load(), {})
