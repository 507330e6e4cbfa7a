"""A local stack for the money tests: PostgreSQL, the REST gateway, Redis behind the Upstash
bridge, the Stripe stand-in (delivering signed webhooks) and the function-URL server running the
real handlers of serverless.yml."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import stripe

from devstack.serve import ServerThread
from devstack.stripe_standin import Standin, StandinControl, StripeStandinSettings
from tests.support import stack as support

JWT_SECRET = "money-tests-jwt-secret-long-enough-for-postgrest"
UPSTASH_TOKEN = "money-upstash-token"
STRIPE_KEY = "sk_test_money_" + "0123456789"
WEBHOOK_SECRET = "whsec_money_tests_secret"
CUSTOM_ISSUER = "https://id.money.test"
CUSTOM_SECRET = "money-tests-custom-provider-secret-32b"
RATE_LIMIT = 8
# The job consumer (the reconciliation's scheduled entry) verifies QStash signatures for this URL.
QSTASH_CURRENT_KEY = "sig_money_current_signing_key_0000"
QSTASH_NEXT_KEY = "sig_money_next_signing_key_00000000"
JOB_CONSUMER_URL = "https://job-consumer.money.test/"


def api_key(role: str) -> str:
    return support.api_key(JWT_SECRET, role)


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
    stripe_url: str = ""

    def sign_in(self, name: str = "Mimi", *, email: bool = False) -> User:
        """A user through the session function, with a custom-provider token (and a verified
        email, which PromptPay needs)."""
        now = int(time.time())
        sub = uuid.uuid4().hex
        claims: dict[str, Any] = {"iss": CUSTOM_ISSUER, "aud": "mimivibe", "sub": sub,
                                  "iat": now, "exp": now + 600, "name": name}
        if email:
            claims.update(email=f"{sub}@example.com", email_verified=True)
        token = jwt.encode(claims, CUSTOM_SECRET, algorithm="HS256")
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


@contextmanager
def money_stack(database_url: str, tmp: Path) -> Iterator[MoneyStack]:
    from devstack.stripe_standin import create_app as stripe_standin

    with support.stack_base(database_url, tmp, jwt_secret=JWT_SECRET, upstash_token=UPSTASH_TOKEN,
                            rate_limit=RATE_LIMIT, pool_max=20) as base:
        standin_app = stripe_standin(StripeStandinSettings(
            api_key=STRIPE_KEY, webhook_secret=WEBHOOK_SECRET, delivery_concurrency=4,
            max_retries=6, retry_base_delay=0.1, retry_max_delay=0.5, delivery_timeout=10.0))
        standin_server = base.servers.enter_context(
            ServerThread(standin_app, name="stripe-standin"))
        # Only the custom provider: another provider left in this process's environment would
        # change which verifier the session function builds.
        for name in ("CLERK_ISSUER", "AUTH0_ISSUER", "FIREBASE_PROJECT_ID", "CUSTOM_JWKS_URL"):
            os.environ.pop(name, None)
        functions_url = base.serve_functions({
            "CUSTOM_ISSUER": CUSTOM_ISSUER,
            "CUSTOM_AUDIENCE": "mimivibe",
            "CUSTOM_HS256_SECRET": CUSTOM_SECRET,
            "STRIPE_SECRET_KEY": STRIPE_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": standin_server.url,
            "QSTASH_CURRENT_SIGNING_KEY": QSTASH_CURRENT_KEY,
            "QSTASH_NEXT_SIGNING_KEY": QSTASH_NEXT_KEY,
            "JOB_CONSUMER_URL": JOB_CONSUMER_URL,
        })
        standin: Standin = standin_app.state.standin
        standin.dispatcher.set_endpoint(functions_url + "/stripe-webhook")
        control = base.servers.enter_context(StandinControl(standin_server.url, STRIPE_KEY))
        client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": standin_server.url},
                                     max_network_retries=0)
        yield MoneyStack(database_url, base.rest_url, functions_url, base.http, client,
                         control, standin, standin_server.url)
