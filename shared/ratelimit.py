"""Per-user rate limits shared by the user functions (upstash-ratelimit over Upstash Redis).

One sliding window per scope (`session`, `purchase`, ...) and identifier (a user id, or a
provider identity before the user exists). Over the limit → 429 `rate_limited` with
`Retry-After`. Whatever goes wrong on the Redis side (unreachable, slow, an error reply such
as `UpstashError` when the REST layer cannot reach Redis, an unparsable answer) the request is
let through with a warning: a rate limiter must not turn a Redis outage into an outage of
sign-in and payments. The client's short timeouts bound the wait to about a second, and for a
few seconds after a failure the limiter does not try at all (`shared.redis.redis_outage`).
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

from shared.errors import RateLimited

if TYPE_CHECKING:
    from upstash_redis import Redis

logger = logging.getLogger("mimivibe.ratelimit")

KEY_PREFIX = "mimivibe:ratelimit"


class RateLimiter:
    def __init__(
        self, redis: Redis, *, max_requests: int, window_seconds: int, prefix: str = KEY_PREFIX
    ) -> None:
        self._redis = redis
        self.max_requests = max_requests
        self.window_seconds = window_seconds
        self._prefix = prefix
        self._limits: dict[tuple[str, int, int], Any] = {}

    def _ratelimit(self, scope: str, max_requests: int, window_seconds: int) -> Any:
        from upstash_ratelimit import Ratelimit, SlidingWindow

        key = (scope, max_requests, window_seconds)
        limit = self._limits.get(key)
        if limit is None:
            limit = Ratelimit(
                redis=self._redis,
                limiter=SlidingWindow(max_requests=max_requests, window=window_seconds, unit="s"),
                prefix=f"{self._prefix}:{scope}",
            )
            self._limits[key] = limit
        return limit

    def hit(
        self,
        scope: str,
        identifier: str,
        *,
        max_requests: int | None = None,
        window_seconds: int | None = None,
    ) -> None:
        """Count one request of `identifier` in `scope`; raise `RateLimited` when over."""
        from shared.redis import redis_outage

        outage = redis_outage(self._redis)
        if outage.active():
            logger.warning("rate limiter skipped for %s: Redis failed moments ago", scope)
            return
        limit = self._ratelimit(
            scope, max_requests or self.max_requests, window_seconds or self.window_seconds
        )
        try:
            response = limit.limit(identifier)
        except Exception as exc:
            outage.record_failure()
            logger.warning("rate limiter unavailable for %s, request let through: %s", scope,
                           type(exc).__name__)
            return
        if response.allowed:
            return
        retry_after = max(1, math.ceil(response.reset - time.time()))
        raise RateLimited(
            headers={"Retry-After": str(retry_after)},
            details={"retry_after_seconds": retry_after, "limit": response.limit},
        )
