"""A local stack for the identity end-to-end tests: PostgreSQL, the REST gateway, Redis behind
the Upstash bridge, a JWKS server for the test providers and the function-URL server running
the real handlers from serverless.yml."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt

from devstack.redis_server import RedisServer
from devstack.serve import ServerThread
from tests.identity.tokens import JwksEndpoints, SigningKey

ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "e2e-jwt-secret-that-is-long-enough-for-postgrest"
UPSTASH_TOKEN = "e2e-upstash-token"
CUSTOM_SECRET = "e2e-custom-provider-secret-32-bytes-long"
FIREBASE_PROJECT = "mimivibe-e2e"
RATE_LIMIT = 5


def api_key(role: str) -> str:
    now = int(time.time())
    return jwt.encode({"role": role, "iss": "supabase", "iat": now, "exp": now + 86400},
                      JWT_SECRET, algorithm="HS256")


def as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    netloc = f"{role}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass
class Provider:
    name: str
    issuer: str
    audience: str | None
    key: SigningKey | None = None
    secret: str | None = None

    def token(self, subject: str, **claims: object) -> str:
        now = int(time.time())
        body: dict[str, object] = {"iss": self.issuer, "sub": subject, "iat": now,
                                   "exp": now + 600}
        if self.audience:
            body["aud"] = self.audience
        if self.name == "firebase":
            body["auth_time"] = now - 30
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        if self.secret is not None:
            return jwt.encode(body, self.secret, algorithm="HS256")
        assert self.key is not None
        return self.key.sign(body)


@dataclass
class Stack:
    database_url: str
    rest_url: str
    functions_url: str
    providers: dict[str, Provider]
    http: httpx.Client

    def session(self, provider_token: str | None, body: dict | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {provider_token}"} if provider_token else {}
        return self.http.post(f"{self.functions_url}/session", json=body, headers=headers)

    def sign_in(self, provider: str = "custom", subject: str | None = None,
                **claims: object) -> dict:
        token = self.providers[provider].token(subject or uuid.uuid4().hex, **claims)
        response = self.session(token)
        assert response.status_code == 200, response.text
        return response.json()

    def rest(self, method: str, path: str, token: str | None, **kwargs) -> httpx.Response:
        headers = {"apikey": api_key("anon"), **kwargs.pop("headers", {})}
        headers["Authorization"] = f"Bearer {token or api_key('anon')}"
        return self.http.request(method, f"{self.rest_url}/{path}", headers=headers, **kwargs)


def _reset_containers() -> None:
    """Forget every per-container cache, so handlers see this stack's environment."""
    from shared import redis as shared_redis
    from shared.db import get_database
    from shared.identity import get_identity_verifier
    from shared.ratelimit import get_rate_limiter
    from shared.sessions import set_session_service
    from shared.settings import reset_settings

    reset_settings()
    shared_redis.reset_redis()
    get_identity_verifier.cache_clear()
    get_database.cache_clear()
    get_rate_limiter.cache_clear()
    set_session_service(None)


@contextmanager
def local_stack(database_url: str, tmp: Path) -> Iterator[Stack]:
    from devstack.function_urls import create_app as function_urls
    from devstack.gateway import GatewaySettings
    from devstack.gateway import create_app as gateway
    from devstack.upstash_bridge import create_app as upstash_bridge

    saved_env = dict(os.environ)
    endpoints = JwksEndpoints()
    keys = {name: SigningKey.rsa() for name in ("clerk", "auth0", "firebase")}
    for name, key in keys.items():
        endpoints.publish(name, key)
    with ExitStack() as stack:
        jwks = stack.enter_context(ServerThread(endpoints.app(), name="jwks"))
        rest = stack.enter_context(ServerThread(gateway(GatewaySettings(
            database_url=as_role(database_url, "authenticator"), jwt_secret=JWT_SECRET,
        )), name="gateway"))
        redis = stack.enter_context(RedisServer(tmp / "redis"))
        bridge = stack.enter_context(
            ServerThread(upstash_bridge(redis.url, UPSTASH_TOKEN), name="upstash-bridge")
        )
        providers = {
            "clerk": Provider("clerk", "https://clerk.e2e.test", None, keys["clerk"]),
            "auth0": Provider("auth0", "https://e2e.auth0.test/", "https://api.e2e.test",
                              keys["auth0"]),
            "firebase": Provider("firebase", f"https://securetoken.google.com/{FIREBASE_PROJECT}",
                                 FIREBASE_PROJECT, keys["firebase"]),
            "custom": Provider("custom", "https://id.e2e.test", "mimivibe",
                               secret=CUSTOM_SECRET),
        }
        environment = {
            "SUPABASE_URL": rest.url,
            "SUPABASE_ANON_KEY": api_key("anon"),
            "SUPABASE_SERVICE_ROLE_KEY": api_key("service_role"),
            "SUPABASE_JWT_SECRET": JWT_SECRET,
            "UPSTASH_REDIS_REST_URL": bridge.url,
            "UPSTASH_REDIS_REST_TOKEN": UPSTASH_TOKEN,
            "RATE_LIMIT_REQUESTS": str(RATE_LIMIT),
            "RATE_LIMIT_WINDOW_SECONDS": "60",
            "CLERK_ISSUER": providers["clerk"].issuer,
            "CLERK_JWKS_URL": f"{jwks.url}/clerk/jwks.json",
            "AUTH0_ISSUER": providers["auth0"].issuer,
            "AUTH0_AUDIENCE": "https://api.e2e.test",
            "AUTH0_JWKS_URL": f"{jwks.url}/auth0/jwks.json",
            "FIREBASE_PROJECT_ID": FIREBASE_PROJECT,
            "FIREBASE_JWKS_URL": f"{jwks.url}/firebase/jwks.json",
            "CUSTOM_ISSUER": providers["custom"].issuer,
            "CUSTOM_AUDIENCE": "mimivibe",
            "CUSTOM_HS256_SECRET": CUSTOM_SECRET,
        }
        try:
            _reset_containers()
            functions = stack.enter_context(
                ServerThread(function_urls(ROOT / "serverless.yml", environment),
                             name="function-urls")
            )
            http = stack.enter_context(httpx.Client(timeout=30))
            yield Stack(database_url, rest.url + "/rest/v1", functions.url, providers, http)
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
            _reset_containers()
