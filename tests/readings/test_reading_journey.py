"""The reading journey end to end on the local stack: sign in, buy stars, ask a question; the
QStash stand-in calls the job consumer with a signed request, and the reading is visible through
the REST gateway and found by search (devstack/journey.py's steps). Then the create-reading
contract through its function URL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.journey import (
    Journey,
    ask_a_question,
    buy,
    buy_stars,
    find_the_reading,
    sign_in,
    sign_in_first_user,
)
from tests.support.local_stack import journey_on_local_stack


@pytest.fixture(scope="module")
def journey(tmp_path_factory: Any, database_factory: Any) -> Iterator[Journey]:
    with journey_on_local_stack(tmp_path_factory.mktemp("stack"),
                                database_factory(migrate=False, bootstrap=False)) as journey:
        yield journey


def test_ask_and_the_consumer_writes_a_reading_found_over_rest_and_by_search(journey):
    sign_in_first_user(journey)
    buy_stars(journey)

    ask_a_question(journey)
    find_the_reading(journey)

    token = journey.state["first"]["token"]
    reading = journey.state["reading"]
    assert reading["question"] == "งานใหม่ที่สมัครไว้จะได้ไหม"
    assert len(reading["tarot_reading"]["cards"]) == 3
    ledger = journey.expect(journey.rest(
        "GET", "wallet_transactions?select=transaction_type,amount&order=seq", token), 200)
    assert ledger == [{"transaction_type": "purchase", "amount": 5},
                      {"transaction_type": "reading", "amount": -1}]
    jobs = journey.expect(journey.rest("GET", "jobs?select=status,attempts", token), 200)
    assert jobs == [{"status": "succeeded", "attempts": 1}]
    # The consumer was called by QStash (schedule or wake-up), each call signed and accepted.
    qstash = journey.info["qstash"]
    messages = journey.client.get(
        f"{qstash['qstash_url']}/local/messages",
        headers={"Authorization": f"Bearer {qstash['qstash_token']}"}).json()["messages"]
    to_consumer = [m for m in messages if m["url"] == qstash["job_consumer_url"]]
    delivered = [m for m in to_consumer if m["state"] == "DELIVERED"]
    assert delivered and all(m["attempts"][-1]["status"] == 200 for m in delivered)
    assert all(a["status"] != 401 for m in to_consumer for a in m["attempts"])


def test_create_reading_answers_the_api_contract(journey):
    # A user of its own with stars bought, so the first test's spending cannot change the outcome.
    sign_in(journey, "contract", "Contract")
    buy(journey, "contract")
    token = journey.state["contract"]["token"]
    body = {"question": "เงินเดือนหน้า", "card_count": 3}

    def create(**kwargs: Any) -> httpx.Response:
        return journey.function("create-reading", **kwargs)

    assert create(json=body, idempotency_key="k").status_code == 401
    missing_key = create(token=token, json=body)
    assert (missing_key.status_code, missing_key.json()["error"]["code"]) == (
        422, "validation_error")
    unknown = create(token=token, json={**body, "price": 0}, idempotency_key="k")
    assert unknown.status_code == 422
    bad_count = create(token=token, json={**body, "card_count": 4}, idempotency_key="k")
    assert bad_count.status_code == 422

    key = str(uuid.uuid4())
    first = create(token=token, json=body, idempotency_key=key)
    assert first.status_code == 202, first.text
    replay = create(token=token, json=body, idempotency_key=key)
    assert (replay.status_code, replay.json()) == (202, first.json())
    reused = create(token=token, json={**body, "card_count": 5}, idempotency_key=key)
    assert (reused.status_code, reused.json()["error"]["code"]) == (409, "idempotency_key_reused")


def test_the_consumer_refuses_an_unsigned_call(journey):
    response = journey.function("job-consumer", json={})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
