"""What every in-process stack of the tests shares: API keys signed with the stack's JWT
secret, the gateway's authenticator URL, forgetting the clients handlers cache per container,
and the common servers (REST gateway, Redis behind the Upstash bridge, the function-URL server)
with the process environment restored when the stack stops."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt

from devstack.redis_server import RedisServer
from devstack.serve import ServerThread

ROOT = Path(__file__).resolve().parents[2]


def api_key(jwt_secret: str, role: str) -> str:
    """A Supabase-style API key (anon or service_role) valid for a day."""
    now = int(time.time())
    return jwt.encode({"role": role, "iss": "supabase", "iat": now, "exp": now + 86400},
                      jwt_secret, algorithm="HS256")


def as_role(url: str, role: str) -> str:
    """The database URL with another user (the gateway logs in as authenticator)."""
    parts = urlsplit(url)
    netloc = f"{role}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def reset_containers() -> None:
    """Forget every per-container client and service and the settings, so handlers see the
    current stack's environment."""
    from shared import bootstrap
    from shared.settings import reset_settings

    reset_settings()
    bootstrap.reset()


@dataclass
class StackBase:
    """The running common servers; `servers` takes the ones a test package adds."""

    servers: ExitStack
    gateway_url: str
    environment: dict[str, str]
    http: httpx.Client

    @property
    def rest_url(self) -> str:
        return self.gateway_url + "/rest/v1"

    def serve_functions(self, environment: dict[str, str]) -> str:
        """Start the function-URL server on serverless.yml with the common environment plus
        `environment`; its URL."""
        from devstack.function_urls import create_app as function_urls

        reset_containers()
        server = self.servers.enter_context(ServerThread(
            function_urls(ROOT / "serverless.yml", {**self.environment, **environment}),
            name="function-urls"))
        return server.url


@contextmanager
def stack_base(database_url: str, tmp: Path, *, jwt_secret: str, upstash_token: str,
               rate_limit: int, **gateway_options: Any) -> Iterator[StackBase]:
    from devstack.gateway import GatewaySettings
    from devstack.gateway import create_app as gateway
    from devstack.upstash_bridge import create_app as upstash_bridge

    saved_env = dict(os.environ)
    with ExitStack() as servers:
        rest = servers.enter_context(ServerThread(gateway(GatewaySettings(
            database_url=as_role(database_url, "authenticator"), jwt_secret=jwt_secret,
            **gateway_options,
        )), name="gateway"))
        redis = servers.enter_context(RedisServer(tmp / "redis"))
        bridge = servers.enter_context(
            ServerThread(upstash_bridge(redis.url, upstash_token), name="upstash-bridge"))
        environment = {
            "SUPABASE_URL": rest.url,
            "SUPABASE_ANON_KEY": api_key(jwt_secret, "anon"),
            "SUPABASE_SERVICE_ROLE_KEY": api_key(jwt_secret, "service_role"),
            "SUPABASE_JWT_SECRET": jwt_secret,
            "UPSTASH_REDIS_REST_URL": bridge.url,
            "UPSTASH_REDIS_REST_TOKEN": upstash_token,
            "RATE_LIMIT_REQUESTS": str(rate_limit),
            "RATE_LIMIT_WINDOW_SECONDS": "60",
        }
        try:
            http = servers.enter_context(httpx.Client(timeout=30))
            yield StackBase(servers, rest.url, environment, http)
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
            reset_containers()
