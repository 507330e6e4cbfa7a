"""Effect metrics come from the use cases, where the effect is known: a create-reading replay
counts nothing, a webhook event is counted by its real outcome (an ignored type is not
'applied'), and stars are counted when the SQL function says it moved them."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg.rows import dict_row
from pydantic import SecretStr

from devstack.ports import free_port
from devstack.serve import ServerThread
from shared import observability
from shared.db import Database
from shared.errors import InvalidPayload, InvalidWebhookSignature
from shared.readings import CreateReadingRequest, ReadingService
from shared.stripe_webhooks import WebhookProcessor
from tests.db.conftest import connect, make_user
from tests.money.conftest import begin_purchase, record_intent
from tests.money.events import StripePayment, event, signed
from tests.readings.conftest import bridge, queue, redis_client, redis_server
from tests.support import stack as support

__all__ = ["bridge", "queue", "redis_client", "redis_server"]

JWT_SECRET = "effect-metrics-tests-jwt-secret-0123456789"
WEBHOOK_SECRET = "whsec_effectmetrics"


@pytest.fixture(scope="module")
def db_url(database_factory: Any) -> str:
    return database_factory(migrate=True)


@pytest.fixture(scope="module")
def database(db_url: str) -> Iterator[Database]:
    from devstack.gateway import GatewaySettings, create_app

    app = create_app(GatewaySettings(database_url=support.as_role(db_url, "authenticator"),
                                     jwt_secret=JWT_SECRET))
    with ServerThread(app, name="gateway") as server:
        db = Database(server.url,
                      anon_key=SecretStr(support.api_key(JWT_SECRET, "anon")),
                      service_role_key=SecretStr(support.api_key(JWT_SECRET, "service_role")))
        yield db
        db.close()


@pytest.fixture
def recorded() -> Iterator[Counter[tuple[str, tuple[tuple[str, str], ...]]]]:
    """Sums of the metrics recorded while the test runs, by name and dimensions."""
    observability.metrics.clear()
    totals: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()

    def snapshot() -> Counter[tuple[str, tuple[tuple[str, str], ...]]]:
        totals.clear()
        for name, value, _, dims in observability.metrics.pending():
            totals[(name, tuple(sorted(dims.items())))] += int(value)
        return totals

    yield snapshot  # type: ignore[misc]
    observability.metrics.clear()


class User:
    def __init__(self, user_id: uuid.UUID) -> None:
        self.user_id = user_id


def test_a_replayed_create_reading_counts_no_second_reading_or_spend(db_url, database, recorded) -> None:
    with connect(db_url) as conn:
        user = User(make_user(conn, stars=5))
    service = ReadingService(database=database, queue=None, waker=None, max_pending=10)
    request = CreateReadingRequest(question="Will the new job go well?", card_count=5, locale="en")

    first = service.create(user, "key-1", request)  # type: ignore[arg-type]
    replay = service.create(user, "key-1", request)  # type: ignore[arg-type]

    assert replay.job_id == first.job_id
    totals = recorded()
    assert totals[("ReadingsCreated", ())] == 1
    assert totals[("StarsSpent", ())] == 2

    service.create(user, "key-2", request)  # type: ignore[arg-type]
    totals = recorded()
    assert totals[("ReadingsCreated", ())] == 2
    assert totals[("StarsSpent", ())] == 4


def outcomes(totals: Counter[Any]) -> dict[tuple[str, str], int]:
    return {(dict(dims)["event_type"], dict(dims)["outcome"]): n
            for (name, dims), n in totals.items() if name == "WebhookEvents"}


def test_webhook_events_are_counted_by_their_real_outcome(db_url, database, recorded) -> None:
    with connect(db_url, row_factory=dict_row) as conn:
        user = make_user(conn)
        purchase = begin_purchase(conn, user, "basic")
        stripe_payment = StripePayment(uuid.UUID(purchase["id"]), purchase["amount"])
        record_intent(conn, stripe_payment.payment_id, stripe_payment.intent_id)
    processor = WebhookProcessor(database=database, secrets=[WEBHOOK_SECRET])
    succeeded = stripe_payment.succeeded()

    assert not processor.handle(*signed(succeeded, WEBHOOK_SECRET)).duplicate
    assert processor.handle(*signed(succeeded, WEBHOOK_SECRET)).duplicate
    processor.handle(*signed(stripe_payment.refunded(purchase["amount"] // 2), WEBHOOK_SECRET))
    ignored = processor.handle(*signed(event("customer.created", {"id": "cus_1"}), WEBHOOK_SECRET))
    with pytest.raises(InvalidWebhookSignature):
        processor.handle(*signed(succeeded, "whsec_someone_else"))
    with pytest.raises(InvalidPayload):
        processor.handle(*signed(b'{"not": "an event"}', WEBHOOK_SECRET))

    assert ignored.result == "ignored"
    totals = recorded()
    assert outcomes(totals) == {
        ("payment_intent.succeeded", "applied"): 1,
        ("payment_intent.succeeded", "duplicate"): 1,
        ("charge.refunded", "applied"): 1,
        ("customer.created", "ignored"): 1,
        ("unverified", "rejected"): 1,
        ("malformed", "rejected"): 1,
    }
    # basic = 15 + 2 bonus stars, credited once; half the amount refunded takes half back.
    assert totals[("StarsCredited", ())] == 17
    assert totals[("StarsClawedBack", ())] == 8


def test_a_webhook_whose_processing_raises_is_counted_as_failed(recorded) -> None:
    unreachable = Database(f"http://127.0.0.1:{free_port()}",
                           anon_key=SecretStr("anon"), service_role_key=SecretStr("service"))
    processor = WebhookProcessor(database=unreachable, secrets=[WEBHOOK_SECRET])
    body = event("payment_intent.canceled", {"id": "pi_unreachable", "object": "payment_intent"})
    try:
        with pytest.raises(Exception):  # noqa: B017 - whatever the client raises, it propagates
            processor.handle(*signed(body, WEBHOOK_SECRET))
    finally:
        unreachable.close()

    assert outcomes(recorded()) == {("payment_intent.canceled", "failed"): 1}


def test_a_consumer_run_counts_the_readings_it_completed(db_url, database, queue, recorded) -> None:
    from tests.readings.conftest import drain, make_consumer

    with connect(db_url) as conn:
        user = User(make_user(conn, stars=3))
    service = ReadingService(database=database, queue=queue, waker=None, max_pending=10)
    for key in ("a", "b"):
        service.create(user, key, CreateReadingRequest(question="งานใหม่จะดีไหม", card_count=3))  # type: ignore[arg-type]
    observability.metrics.clear()

    report = drain(make_consumer(database, queue))

    # The database is shared with the other tests of this module: at least these two ran.
    assert report.succeeded >= 2
    totals = recorded()
    assert totals[("ReadingsCompleted", ())] == report.succeeded
    assert totals[("ReadingRetries", ())] == report.retried == 0
    assert totals[("DeadLetters", ())] == report.dead_lettered == 0
    assert totals[("QueueDepth", ())] == 0
    assert ("ReadingsCreated", ()) not in totals
