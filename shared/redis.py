"""The product's Upstash Redis (REST) client, built once per container.

`upstash_redis` (and httpx under it) is imported inside the factory so that importing this
module costs nothing on the paths that never touch Redis. Tests inject a client with
`set_redis(...)` and drop it with `reset_redis()`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from upstash_redis import Redis

# A Lambda request must not hang on Redis: fail fast and let the caller degrade (the sweep
# re-enqueues jobs that never reached the stream).
CONNECT_TIMEOUT_SECONDS = 2.0
REQUEST_TIMEOUT_SECONDS = 5.0
RETRIES = 1
RETRY_INTERVAL_SECONDS = 0.2

_client: Redis | None = None
_lock = threading.Lock()


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


def get_redis(settings: Settings | None = None) -> Redis:
    """The container's client, built on first use from UPSTASH_REDIS_REST_URL/_TOKEN."""
    global _client
    if _client is not None:
        return _client
    with _lock:
        if _client is None:
            settings = settings or get_settings()
            settings.require("upstash_redis_rest_url", "upstash_redis_rest_token")
            assert settings.upstash_redis_rest_url is not None
            assert settings.upstash_redis_rest_token is not None
            _client = build_redis(
                settings.upstash_redis_rest_url,
                settings.upstash_redis_rest_token.get_secret_value(),
            )
        return _client


def set_redis(client: Redis) -> None:
    """Use `client` for the rest of this container (tests, or a client built elsewhere)."""
    global _client
    with _lock:
        _client = client


def reset_redis() -> None:
    """Forget the cached client (closing it), so the next get_redis() builds a new one."""
    global _client
    with _lock:
        client, _client = _client, None
    if client is not None:
        client.close()
