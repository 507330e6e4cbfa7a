"""The Upstash REST bridge, spoken to by the real upstash-redis client (built by shared.redis)
and by plain HTTP, in front of a real redis-server."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from upstash_ratelimit import FixedWindow, Ratelimit, SlidingWindow
from upstash_redis import Redis
from upstash_redis.errors import UpstashError

from devstack.ports import free_port
from devstack.redis_server import RedisServer
from devstack.serve import ServerThread
from devstack.upstash_bridge import create_app
from shared import bootstrap
from shared import redis as shared_redis
from shared.errors import ConfigError
from shared.settings import reset_settings

TOKEN = "local-upstash-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def bridge_url(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("redis")) as server, \
            ServerThread(create_app(server.url, TOKEN), name="upstash-bridge") as bridge:
        yield bridge.url


@pytest.fixture(scope="module")
def client(bridge_url):
    redis = shared_redis.build_redis(bridge_url, TOKEN)
    yield redis
    redis.close()


@pytest.fixture
def key():
    prefix = uuid.uuid4().hex[:10]
    return lambda name: f"t:{prefix}:{name}"


def call(url: str, command: list, **headers: str) -> httpx.Response:
    return httpx.post(url, json=command, headers={**AUTH, **headers})


def test_strings_round_trip_unicode_and_missing_keys(client, key):
    assert client.set(key("s"), "ไพ่ทาโรต์ 🔮") is True
    assert client.get(key("s")) == "ไพ่ทาโรต์ 🔮"
    assert client.get(key("missing")) is None
    assert client.set(key("s"), "again", nx=True) is False
    assert client.mset({key("a"): "1", key("b"): "OK"}) is True
    assert client.mget(key("a"), key("b"), key("missing")) == ["1", "OK", None]
    assert client.delete(key("a"), key("b")) == 2


def test_counters_with_expiry(client, key):
    assert client.incr(key("n")) == 1
    assert client.incrby(key("n"), 41) == 42
    assert client.expire(key("n"), 60) is True
    assert 0 < client.ttl(key("n")) <= 60
    assert client.set(key("short"), "x", px=50) is True
    time.sleep(0.1)
    assert client.get(key("short")) is None
    assert client.ttl(key("missing")) == -2


def test_hashes(client, key):
    assert client.hset(key("h"), values={"user": "u1", "stars": "3"}) == 2
    assert client.hget(key("h"), "user") == "u1"
    assert client.hincrby(key("h"), "stars", 2) == 5
    assert client.hgetall(key("h")) == {"user": "u1", "stars": "5"}
    assert client.hdel(key("h"), "user") == 1
    assert client.hexists(key("h"), "user") is False


def test_sorted_sets(client, key):
    assert client.zadd(key("z"), {"a": 1, "b": 2.5, "c": 3}) == 3
    assert client.zrange(key("z"), 0, -1, withscores=True) == [("a", 1.0), ("b", 2.5), ("c", 3.0)]
    assert client.zscore(key("z"), "b") == 2.5
    assert client.zremrangebyscore(key("z"), 0, 2) == 1
    assert client.zcard(key("z")) == 2


@pytest.mark.parametrize("limiter", [FixedWindow(3, 30), SlidingWindow(3, 30)],
                         ids=["fixed-window", "sliding-window"])
def test_upstash_ratelimit_allows_the_limit_then_blocks(client, key, limiter):
    ratelimit = Ratelimit(client, limiter, prefix=key("rl"))
    decisions = [ratelimit.limit("user-1") for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert ratelimit.limit("user-2").allowed is True


def test_scripts_with_an_upstash_shebang_keep_the_client_sha(client, key):
    script = "#!lua flags=allow-key-locking\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])"
    sha = client.script_load(script)
    assert sha == hashlib.sha1(script.encode()).hexdigest()
    assert client.evalsha(sha, keys=[key("c")], args=["2"]) == 2
    assert client.script_exists(sha, "0" * 40) == [True, False]
    assert client.eval(script, keys=[key("c")], args=["3"]) == 5
    with pytest.raises(UpstashError, match="NOSCRIPT"):
        client.evalsha("f" * 40)


def test_stream_commands_of_the_job_queue(client, key):
    stream = key("jobs")
    assert client.xgroup_create(stream, "workers", "$", mkstream=True) == "OK"
    ids = [client.xadd(stream, "*", {"job_id": f"j{i}", "attempt": "1"}) for i in range(3)]
    assert client.xlen(stream) == 3
    assert client.xrange(stream, "-", "+", count=1) == [[ids[0], ["job_id", "j0", "attempt", "1"]]]

    read = client.xreadgroup("workers", "w1", {stream: ">"}, count=2)
    assert read == [[stream, [[ids[0], ["job_id", "j0", "attempt", "1"]],
                              [ids[1], ["job_id", "j1", "attempt", "1"]]]]]
    assert client.xreadgroup("workers", "w1", {stream: ">"}, count=5)[0][1][0][0] == ids[2]
    assert client.xpending(stream, "workers") == [3, ids[0], ids[2], [["w1", "3"]]]

    assert client.xack(stream, "workers", ids[0]) == 1
    time.sleep(0.02)
    extended = client.xpending(stream, "workers", "-", "+", 10, consumer="w1")
    assert [(entry[0], entry[1], entry[3]) for entry in extended] == [
        (ids[1], "w1", 1), (ids[2], "w1", 1)]
    assert extended[0][2] >= 20  # idle milliseconds

    claimed = client.xautoclaim(stream, "workers", "w2", 10, "0-0", count=1)
    assert claimed[0] == ids[2]  # the cursor for the next call
    assert claimed[1] == [[ids[1], ["job_id", "j1", "attempt", "1"]]]
    assert client.xpending(stream, "workers", "-", "+", 10, consumer="w2")[0][3] == 2

    assert client.xdel(stream, ids[0]) == 1
    assert client.xtrim(stream, maxlen=1, approximate=False) == 1
    assert client.xlen(stream) == 1
    assert client.xreadgroup("workers", "w1", {stream: ">"}) == []


def test_pipeline_and_transaction(client, key):
    pipe = client.pipeline()
    pipe.set(key("p"), "1")
    pipe.incr(key("p"))
    pipe.get(key("p"))
    assert pipe.exec() == [True, 2, "2"]

    tx = client.multi()
    tx.incrby(key("t"), 5)
    tx.expire(key("t"), 30)
    tx.hset(key("th"), "f", "v")
    assert tx.exec() == [5, True, 1]


def test_pipeline_reports_errors_per_command(bridge_url, key):
    response = call(bridge_url + "/pipeline", [["SET", key("x"), "a"], ["INCR", key("x")],
                                               ["GET", key("x")]])
    assert response.status_code == 200
    assert response.json() == [
        {"result": "OK"}, {"error": "ERR value is not an integer or out of range"},
        {"result": "a"}]


def test_transaction_with_a_rejected_command_is_discarded_as_a_whole(bridge_url, key):
    response = call(bridge_url + "/multi-exec", [["SET", key("x"), "1"], ["NOSUCHCMD"]])
    assert response.status_code == 400
    errors = response.json()
    assert len(errors) == 2 and "EXECABORT" in errors[0]["error"]
    assert "unknown command" in errors[1]["error"]
    assert call(bridge_url, ["EXISTS", key("x")]).json() == {"result": 0}


def test_the_official_client_reads_a_discarded_transaction_as_an_error(bridge_url, key):
    client = shared_redis.build_redis(bridge_url, TOKEN)
    try:
        tx = client.multi()
        tx.set(key("d"), "1")
        tx.execute(["NOSUCHCMD"])
        with pytest.raises(UpstashError, match=r"EXECABORT|unknown command"):
            tx.exec()
        assert client.exists(key("d")) == 0
    finally:
        client.close()


@pytest.mark.parametrize("command", [["MULTI"], ["WATCH", "k"], ["SELECT", "1"],
                                     ["SUBSCRIBE", "c"]])
def test_commands_that_would_leave_connection_state_are_refused(bridge_url, key, command):
    response = call(bridge_url, command)
    assert response.status_code == 400 and "not available" in response.json()["error"]
    path = httpx.get(bridge_url + "/" + "/".join(command), headers=AUTH)
    assert path.status_code == 400
    pipeline = call(bridge_url + "/pipeline", [["SET", key("s"), "1"], command])
    assert pipeline.status_code == 400


def test_a_lone_multi_leaves_no_state_for_the_next_requests(bridge_url, key):
    call(bridge_url, ["MULTI"])
    assert call(bridge_url, ["SET", key("m"), "v"]).json() == {"result": "OK"}
    for _ in range(40):
        assert call(bridge_url, ["GET", key("m")]).json() == {"result": "v"}


def test_base64_encoding_covers_every_string_but_ok(bridge_url, key):
    b64 = {"Upstash-Encoding": "base64"}
    assert call(bridge_url, ["SET", key("b"), "bar"], **b64).json() == {"result": "OK"}
    assert call(bridge_url, ["GET", key("b")], **b64).json() == {"result": "YmFy"}
    assert call(bridge_url, ["INCR", key("n")], **b64).json() == {"result": 1}
    assert call(bridge_url, ["GET", key("none")], **b64).json() == {"result": None}
    assert call(bridge_url, ["PING"], **b64).json() == {"result": "UE9ORw=="}
    call(bridge_url, ["HSET", key("h"), "f", "ไพ่"])
    assert call(bridge_url, ["HGETALL", key("h")], **b64).json() == {
        "result": ["Zg==", base64.b64encode("ไพ่".encode()).decode()]}


def test_binary_values_survive_base64_and_are_replaced_without_it(bridge_url, key):
    raw = b"\xff\x00tarot"
    response = httpx.post(f"{bridge_url}/set/{key('bin')}", content=raw, headers=AUTH)
    assert response.json() == {"result": "OK"}
    encoded = call(bridge_url, ["GET", key("bin")], **{"Upstash-Encoding": "base64"})
    assert base64.b64decode(encoded.json()["result"]) == raw
    assert call(bridge_url, ["GET", key("bin")]).json() == {"result": "\ufffd\x00tarot"}


def test_path_form_with_query_arguments_and_token_parameter(bridge_url, key):
    k = key("path/with slash")
    quoted = httpx.URL(bridge_url).copy_with(raw_path=b"/set/" + k.replace("/", "%2F").replace(
        " ", "%20").encode() + b"/v1/EX/100")
    assert httpx.get(quoted, headers=AUTH).json() == {"result": "OK"}
    assert call(bridge_url, ["GET", k]).json() == {"result": "v1"}
    response = httpx.post(f"{bridge_url}/set/{key('q')}?EX=100&_token={TOKEN}", content=b"v2")
    assert response.json() == {"result": "OK"}
    assert 0 < call(bridge_url, ["TTL", key("q")]).json()["result"] <= 100
    assert httpx.get(f"{bridge_url}/get/{key('q')}?_token={TOKEN}").json() == {"result": "v2"}


def test_a_bad_or_missing_token_gets_401(bridge_url):
    for headers in ({"Authorization": "Bearer wrong"}, {}, {"Authorization": TOKEN}):
        response = httpx.post(bridge_url, json=["PING"], headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized"}
    wrong = Redis(bridge_url, "wrong", allow_telemetry=False)
    with pytest.raises(UpstashError, match="Unauthorized"):
        wrong.ping()
    wrong.close()


def test_unknown_commands_and_bad_bodies_are_400_errors(bridge_url, client):
    response = call(bridge_url, ["NOSUCHCMD", "x"])
    assert response.status_code == 400
    assert response.json()["error"].startswith("ERR unknown command")
    with pytest.raises(UpstashError, match="unknown command"):
        client.execute(["NOSUCHCMD"])
    bad = httpx.post(bridge_url, content=b"{not json", headers=AUTH)
    assert bad.status_code == 400 and "error" in bad.json()
    assert call(bridge_url, []).status_code == 400
    assert httpx.delete(bridge_url + "/get/x", headers=AUTH).status_code == 405


def test_an_unreachable_redis_is_a_500_json_error():
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with ServerThread(create_app(dead, TOKEN), name="dead-bridge") as bridge:
        response = call(bridge.url, ["PING"])
        pipeline = call(bridge.url + "/pipeline", [["PING"]])
    assert response.status_code == 500 and response.json()["error"]
    assert pipeline.status_code == 500 and pipeline.json()["error"]


def test_the_bootstrap_builds_one_redis_client_per_settings(bridge_url, key, monkeypatch):
    for name, value in {"SUPABASE_URL": "http://127.0.0.1:1", "SUPABASE_ANON_KEY": "a",
                        "SUPABASE_SERVICE_ROLE_KEY": "s", "SUPABASE_JWT_SECRET": "j" * 32,
                        "UPSTASH_REDIS_REST_URL": bridge_url + "/",
                        "UPSTASH_REDIS_REST_TOKEN": TOKEN}.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    bootstrap.reset()
    try:
        first = bootstrap.services().redis
        assert bootstrap.services().redis is first
        assert first.set(key("f"), "v") is True and first.get(key("f")) == "v"
        reset_settings()  # new settings (a rotation): a new client
        assert bootstrap.services().redis is not first
        injected = Redis(bridge_url, TOKEN, allow_telemetry=False)
        bootstrap.override(redis=injected)
        assert bootstrap.services().redis is injected
        bootstrap.reset()
        monkeypatch.delenv("UPSTASH_REDIS_REST_TOKEN")
        reset_settings()
        with pytest.raises(ConfigError, match="UPSTASH_REDIS_REST_TOKEN"):
            _ = bootstrap.services().redis
    finally:
        bootstrap.reset()
        reset_settings()


def test_importing_shared_redis_does_not_import_the_sdk():
    code = "import sys, shared.redis; print('upstash_redis' in sys.modules, 'httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
