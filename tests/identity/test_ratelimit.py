"""The shared rate limiter through the real upstash-redis client, the bridge and a real Redis."""

from __future__ import annotations

import os
import signal
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


def test_an_error_reply_from_the_rest_layer_lets_requests_through_with_a_warning(caplog):
    # The Upstash REST layer answers, but cannot reach Redis: an error reply (UpstashError).
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with ServerThread(create_app(dead_redis, TOKEN), name="bridge-to-nothing") as bridge:
        client = build_redis(bridge.url, TOKEN)
        try:
            limiter = RateLimiter(client, max_requests=1, window_seconds=30)
            with caplog.at_level("WARNING", logger="mimivibe.ratelimit"):
                limiter.hit("session", "user-a")
                limiter.hit("session", "user-a")
        finally:
            client.close()
    assert any("UpstashError" in r.getMessage() for r in caplog.records)


def test_a_stopped_redis_costs_a_request_about_a_second_and_the_next_ones_nothing(tmp_path):
    with RedisServer(tmp_path / "redis") as server, \
            ServerThread(create_app(server.url, TOKEN), name="bridge-to-stopped") as bridge:
        client = build_redis(bridge.url, TOKEN)
        limiter = RateLimiter(client, max_requests=1, window_seconds=30,
                              prefix=f"t:{uuid.uuid4().hex}")
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            limiter.hit("session", "user-a")
            first = time.monotonic() - started
            started = time.monotonic()
            for _ in range(5):
                limiter.hit("session", "user-a")
            next_five = time.monotonic() - started
        finally:
            os.kill(server.pid, signal.SIGCONT)
            client.close()
    assert first < 1.5
    assert next_five < 0.5
