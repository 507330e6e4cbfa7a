"""The shared rate limiter through the real upstash-redis client, the bridge and a real Redis."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from devstack.ports import free_port
from devstack.redis_server import RedisServer
from devstack.serve import ServerThread
from devstack.upstash_bridge import create_app
from shared.errors import RateLimited
from shared.ratelimit import RateLimiter
from shared.redis import build_redis

TOKEN = "ratelimit-test-token"


@pytest.fixture(scope="module")
def redis_client(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("redis")) as server, \
            ServerThread(create_app(server.url, TOKEN), name="upstash-bridge") as bridge:
        client = build_redis(bridge.url, TOKEN)
        yield client
        client.close()


def test_requests_over_the_limit_get_429_with_retry_after(redis_client):
    limiter = RateLimiter(redis_client, max_requests=3, window_seconds=30,
                          prefix=f"t:{uuid.uuid4().hex}")
    for _ in range(3):
        limiter.hit("session", "user-a")

    with pytest.raises(RateLimited) as caught:
        limiter.hit("session", "user-a")

    error = caught.value
    assert error.status == 429 and error.code == "rate_limited"
    retry_after = int(error.headers["Retry-After"])
    assert 1 <= retry_after <= 30
    assert error.details == {"retry_after_seconds": retry_after, "limit": 3}


def test_limits_are_per_identifier_and_per_scope(redis_client):
    limiter = RateLimiter(redis_client, max_requests=1, window_seconds=30,
                          prefix=f"t:{uuid.uuid4().hex}")
    limiter.hit("session", "user-a")
    limiter.hit("session", "user-b")
    limiter.hit("purchase", "user-a")
    with pytest.raises(RateLimited):
        limiter.hit("session", "user-a")


def test_scope_may_override_the_default_limit(redis_client):
    limiter = RateLimiter(redis_client, max_requests=1, window_seconds=30,
                          prefix=f"t:{uuid.uuid4().hex}")
    for _ in range(4):
        limiter.hit("create-reading", "user-a", max_requests=4)
    with pytest.raises(RateLimited):
        limiter.hit("create-reading", "user-a", max_requests=4)


def test_the_limit_holds_under_a_concurrent_burst(redis_client):
    limiter = RateLimiter(redis_client, max_requests=5, window_seconds=30,
                          prefix=f"t:{uuid.uuid4().hex}")

    def attempt(_: int) -> bool:
        try:
            limiter.hit("session", "burst-user")
        except RateLimited:
            return False
        return True

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        allowed = sum(pool.map(attempt, range(40)))

    assert allowed == 5
    assert time.monotonic() - started < 20


def test_unreachable_redis_lets_requests_through():
    client = build_redis(f"http://127.0.0.1:{free_port()}", TOKEN)
    try:
        limiter = RateLimiter(client, max_requests=1, window_seconds=30)
        limiter.hit("session", "user-a")
        limiter.hit("session", "user-a")
    finally:
        client.close()
