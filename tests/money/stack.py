"""A local stack for the money tests: PostgreSQL, the REST gateway, Redis behind the Upstash
bridge, the Stripe stand-in (delivering signed webhooks) and the function-URL server running the
real handlers of serverless.yml."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
import stripe

from devstack.redis_server import RedisServer
from devstack.serve import ServerThread
from devstack.stripe_standin import Standin, StandinControl, StripeStandinSettings

ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "money-tests-jwt-secret-long-enough-for-postgrest"
UPSTASH_TOKEN = "money-upstash-token"
STRIPE_KEY = "sk_test_money_" + "0123456789"
WEBHOOK_SECRET = "whsec_money_tests_secret"
CUSTOM_ISSUER = "https://id.money.test"
CUSTOM_SECRET = "money-tests-custom-provider-secret-32b"
RATE_LIMIT = 8


def api_key(role: str) -> str:
    now = int(time.time())
    return jwt.encode({"role": role, "iss": "supabase", "iat": now, "exp": now + 86400},
                      JWT_SECRET, algorithm="HS256")


def as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    netloc = f"{role}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass
class User:
    id: str
    token: str


@dataclass
class MoneyStack:
    database_url: str
    rest_url: str
    functions_url: str
    http: httpx.Client
    stripe: stripe.StripeClient
    control: StandinControl
    standin: Standin

    def sign_in(self, name: str = "Mimi") -> User:
        """A user through the session function, with a custom-provider token."""
        now = int(time.time())
        token = jwt.encode({"iss": CUSTOM_ISSUER, "aud": "mimivibe", "sub": uuid.uuid4().hex,
                            "iat": now, "exp": now + 600, "name": name},
                           CUSTOM_SECRET, algorithm="HS256")
        response = self.http.post(f"{self.functions_url}/session",
                                  headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        body = response.json()
        return User(body["user"]["id"], body["access_token"])

    def call(self, function: str, user: User | None = None, *, method: str = "POST",
             path: str = "", key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            headers["Authorization"] = f"Bearer {user.token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.http.request(method, f"{self.functions_url}/{function}{path}",
                                 headers=headers, **kwargs)

    def rest(self, method: str, path: str, user: User, **kwargs: Any) -> httpx.Response:
        headers = {"apikey": api_key("anon"), "Authorization": f"Bearer {user.token}"}
        return self.http.request(method, f"{self.rest_url}/{path}", headers=headers, **kwargs)

    def me(self, user: User) -> dict[str, Any]:
        rows = self.rest("GET", "users?select=star_balance,coin_balance", user).json()
        assert len(rows) == 1
        return dict(rows[0])

    def wait_for(self, check: Any, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError("timed out waiting")


def reset_containers() -> None:
    """Forget every per-container cache, so handlers see this stack's environment."""
    from shared import redis as shared_redis
    from shared.db import get_database
    from shared.identity import get_identity_verifier
    from shared.payment_methods import set_payment_methods_service
    from shared.payments import set_purchase_service
    from shared.ratelimit import get_rate_limiter
    from shared.sessions import set_session_service
    from shared.settings import reset_settings
    from shared.stripe_client import set_stripe_client
    from shared.stripe_webhooks import set_webhook_processor

    reset_settings()
    shared_redis.reset_redis()
    get_identity_verifier.cache_clear()
    get_database.cache_clear()
    get_rate_limiter.cache_clear()
    set_session_service(None)
    set_stripe_client(None)
    set_purchase_service(None)
    set_payment_methods_service(None)
    set_webhook_processor(None)


@contextmanager
def money_stack(database_url: str, tmp: Path) -> Iterator[MoneyStack]:
    from devstack.function_urls import create_app as function_urls
    from devstack.gateway import GatewaySettings
    from devstack.gateway import create_app as gateway
    from devstack.stripe_standin import create_app as stripe_standin
    from devstack.upstash_bridge import create_app as upstash_bridge

    saved_env = dict(os.environ)
    with ExitStack() as stack:
        rest = stack.enter_context(ServerThread(gateway(GatewaySettings(
            database_url=as_role(database_url, "authenticator"), jwt_secret=JWT_SECRET,
            pool_max=20,
        )), name="gateway"))
        redis = stack.enter_context(RedisServer(tmp / "redis"))
        bridge = stack.enter_context(
            ServerThread(upstash_bridge(redis.url, UPSTASH_TOKEN), name="upstash-bridge"))
        standin_app = stripe_standin(StripeStandinSettings(
            api_key=STRIPE_KEY, webhook_secret=WEBHOOK_SECRET, delivery_concurrency=4,
            max_retries=6, retry_base_delay=0.1, retry_max_delay=0.5, delivery_timeout=10.0))
        standin_server = stack.enter_context(ServerThread(standin_app, name="stripe-standin"))
        environment = {
            "SUPABASE_URL": rest.url,
            "SUPABASE_ANON_KEY": api_key("anon"),
            "SUPABASE_SERVICE_ROLE_KEY": api_key("service_role"),
            "SUPABASE_JWT_SECRET": JWT_SECRET,
            "UPSTASH_REDIS_REST_URL": bridge.url,
            "UPSTASH_REDIS_REST_TOKEN": UPSTASH_TOKEN,
            "RATE_LIMIT_REQUESTS": str(RATE_LIMIT),
            "RATE_LIMIT_WINDOW_SECONDS": "60",
            "CUSTOM_ISSUER": CUSTOM_ISSUER,
            "CUSTOM_AUDIENCE": "mimivibe",
            "CUSTOM_HS256_SECRET": CUSTOM_SECRET,
            "STRIPE_SECRET_KEY": STRIPE_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": standin_server.url,
        }
        for name in ("CLERK_ISSUER", "AUTH0_ISSUER", "FIREBASE_PROJECT_ID", "CUSTOM_JWKS_URL"):
            os.environ.pop(name, None)
        try:
            reset_containers()
            functions = stack.enter_context(ServerThread(
                function_urls(ROOT / "serverless.yml", environment), name="function-urls"))
            standin: Standin = standin_app.state.standin
            standin.dispatcher.set_endpoint(functions.url + "/stripe-webhook")
            http = stack.enter_context(httpx.Client(timeout=30))
            control = stack.enter_context(StandinControl(standin_server.url, STRIPE_KEY))
            client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": standin_server.url},
                                         max_network_retries=0)
            yield MoneyStack(database_url, rest.url + "/rest/v1", functions.url, http, client,
                             control, standin)
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
            reset_containers()
