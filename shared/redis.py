"""The product's Upstash Redis (REST) client factory and its outage state.

`upstash_redis` (and httpx under it) is imported inside the factory so that importing this
module costs nothing on the paths that never touch Redis. The product's client is
`shared.bootstrap.services().redis`, rebuilt when the settings change.

Redis is never what a user request waits for: the limiter and the reading stream only improve
a request, so every call has short timeouts and no retry, and after a failure `redis_outage`
(one per client) makes request paths skip Redis for a few seconds (the first request of an outage pays at most
about a second, the next ones nothing). The job consumer ignores the outage state: it runs on
a schedule and is the one that finds Redis back.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING

from shared.settings import Settings

if TYPE_CHECKING:
    from upstash_redis import Redis

CONNECT_TIMEOUT_SECONDS = 0.5
REQUEST_TIMEOUT_SECONDS = 1.0
# A retry would double what a slow Redis costs a request; the callers degrade instead (the
# limiter lets the request through, the sweep streams a job that was not streamed).
RETRIES = 0
RETRY_INTERVAL_SECONDS = 0.0
# How long request paths skip Redis after it failed them.
OUTAGE_COOLDOWN_SECONDS = 5.0


def build_redis(url: str, token: str) -> Redis:
    """A new client with the project's timeouts and retries (no telemetry headers)."""
    import httpx
    from upstash_redis import Redis

    client = Redis(
        url=url.rstrip("/"),
        token=token,
        rest_encoding="base64",
        rest_retries=RETRIES,
        rest_retry_interval=RETRY_INTERVAL_SECONDS,
        allow_telemetry=False,
    )
    # upstash-redis builds its httpx client with no timeout and offers no option for one.
    http = getattr(getattr(client, "_http", None), "_client", None)
    if isinstance(http, httpx.Client):
        http.timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
    return client


def build_redis_from_settings(settings: Settings) -> Redis:
    """The client of UPSTASH_REDIS_REST_URL/_TOKEN (both required)."""
    settings.require("upstash_redis_rest_url", "upstash_redis_rest_token")
    assert settings.upstash_redis_rest_url is not None
    assert settings.upstash_redis_rest_token is not None
    return build_redis(settings.upstash_redis_rest_url,
                       settings.upstash_redis_rest_token.get_secret_value())


class RedisOutage:
    """Whether request paths should skip Redis now: set by a failed call, for a cooldown."""

    def __init__(self, cooldown_seconds: float = OUTAGE_COOLDOWN_SECONDS) -> None:
        self.cooldown_seconds = cooldown_seconds
        self._until = 0.0
        self._lock = threading.Lock()

    def active(self) -> bool:
        return time.monotonic() < self._until

    def record_failure(self) -> None:
        with self._lock:
            self._until = time.monotonic() + self.cooldown_seconds

    def clear(self) -> None:
        with self._lock:
            self._until = 0.0


_outages: weakref.WeakKeyDictionary[object, RedisOutage] = weakref.WeakKeyDictionary()
_outages_lock = threading.Lock()


def redis_outage(client: object) -> RedisOutage:
    """The outage state of `client` (each client its own: a dead one never mutes a live one)."""
    with _outages_lock:
        outage = _outages.get(client)
        if outage is None:
            outage = _outages[client] = RedisOutage()
        return outage
