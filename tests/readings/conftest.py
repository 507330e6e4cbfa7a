"""Fixtures for the reading tests: a fresh migrated database per module behind the REST gateway,
real Redis behind the Upstash bridge, and the product's clients pointed at them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from pydantic import SecretStr

from devstack.redis_server import RedisServer
from devstack.serve import ServerThread
from shared.access_tokens import mint_access_token
from shared.consumer import ConsumerConfig, JobConsumer
from shared.db import Database
from shared.queue import ReadingQueue
from shared.readings import CreateReadingRequest, ReadingService
from tests.db.conftest import make_user
from tests.support import stack as support

JWT_SECRET = "readings-tests-jwt-secret-with-32-plus-characters"
UPSTASH_TOKEN = "readings-tests-upstash-token"

__all__ = ["make_user"]


def api_key(role: str) -> str:
    return support.api_key(JWT_SECRET, role)


def user_token(user_id: uuid.UUID) -> str:
    return mint_access_token(user_id, secret=JWT_SECRET).token


class FakeUser:
    """What create() needs of an AuthenticatedUser."""

    def __init__(self, user_id: uuid.UUID) -> None:
        self.user_id = user_id


def ask(service: ReadingService, user_id: uuid.UUID, question: str = "งานใหม่จะดีไหม",
        *, key: str | None = None, card_count: int = 3, locale: str = "th") -> Any:
    request = CreateReadingRequest(question=question, card_count=card_count, locale=locale)
    return service.create(FakeUser(user_id), key or uuid.uuid4().hex, request)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def readings_db(database_factory: Any) -> str:
    """A fresh migrated database per module: the sweep looks at every job in it."""
    return database_factory(migrate=True)


@pytest.fixture
def sql(readings_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(readings_db, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture(scope="module")
def gateway(readings_db: str) -> Iterator[ServerThread]:
    from devstack.gateway import GatewaySettings, create_app

    app = create_app(GatewaySettings(database_url=support.as_role(readings_db, "authenticator"),
                                     jwt_secret=JWT_SECRET))
    with ServerThread(app, name="gateway") as server:
        yield server


@pytest.fixture(scope="module")
def database(gateway: ServerThread) -> Iterator[Database]:
    db = Database(gateway.url, anon_key=SecretStr(api_key("anon")),
                  service_role_key=SecretStr(api_key("service_role")))
    yield db
    db.close()


@pytest.fixture(scope="package")
def redis_server(tmp_path_factory: Any) -> Iterator[RedisServer]:
    with RedisServer(Path(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture(scope="package")
def bridge(redis_server: RedisServer) -> Iterator[ServerThread]:
    from devstack.upstash_bridge import create_app

    with ServerThread(create_app(redis_server.url, UPSTASH_TOKEN), name="upstash") as server:
        yield server


@pytest.fixture(scope="package")
def redis_client(bridge: ServerThread) -> Iterator[Any]:
    from shared.redis import build_redis

    client = build_redis(bridge.url, UPSTASH_TOKEN)
    yield client
    client.close()


@pytest.fixture
def queue(redis_client: Any) -> ReadingQueue:
    """A queue on streams of its own, so tests never see each other's entries."""
    name = f"test:{uuid.uuid4().hex[:10]}"
    return ReadingQueue(redis_client, stream=name, dead_letter_stream=name + ":dead")


@pytest.fixture
def service(database: Database, queue: ReadingQueue) -> ReadingService:
    return ReadingService(database=database, queue=queue, waker=None, max_pending=100)


def make_consumer(database: Database, queue: ReadingQueue, provider: Any = None,
                  **config: Any) -> JobConsumer:
    from shared.pipeline.offline import OfflineReader

    reader = provider or OfflineReader()
    settings = {"lease_seconds": 30, "sweep_grace_seconds": 0, **config}
    return JobConsumer(database=database, queue=queue, provider=lambda: reader,
                       config=ConsumerConfig(**settings))


def drain(consumer: JobConsumer, seconds: float = 30.0, **kwargs: Any) -> Any:
    return consumer.run(deadline=time.monotonic() + seconds, **kwargs)
