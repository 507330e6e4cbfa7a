"""A local stack for the identity end-to-end tests: PostgreSQL, the REST gateway, Redis behind
the Upstash bridge, a JWKS server for the test providers and the function-URL server running
the real handlers from serverless.yml."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt

from devstack.serve import ServerThread
from tests.identity.tokens import JwksEndpoints, SigningKey
from tests.support import stack as support

JWT_SECRET = "e2e-jwt-secret-that-is-long-enough-for-postgrest"
UPSTASH_TOKEN = "e2e-upstash-token"
CUSTOM_SECRET = "e2e-custom-provider-secret-32-bytes-long"
FIREBASE_PROJECT = "mimivibe-e2e"
RATE_LIMIT = 5


def api_key(role: str) -> str:
    return support.api_key(JWT_SECRET, role)


@dataclass
class Provider:
    name: str
    issuer: str
    audience: str | None
    key: SigningKey | None = None
    secret: str | None = None  # custom only: a shared HS256 secret next to its JWKS key

    def claims(self, subject: str, **claims: object) -> dict[str, object]:
        now = int(time.time())
        body: dict[str, object] = {"iss": self.issuer, "sub": subject, "iat": now,
                                   "exp": now + 600}
        if self.audience:
            body["aud"] = self.audience
        if self.name == "firebase":
            body["auth_time"] = now - 30
        body.update(claims)
        return {k: v for k, v in body.items() if v is not None}

    def token(self, subject: str, **claims: object) -> str:
        """RS256 with the provider's published key."""
        assert self.key is not None
        return self.key.sign(self.claims(subject, **claims))

    def hs256_token(self, subject: str, **claims: object) -> str:
        """HS256 with the custom provider's shared secret."""
        assert self.secret is not None
        return jwt.encode(self.claims(subject, **claims), self.secret, algorithm="HS256")


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
        """A REST call with the anon API key; `token` None sends no Authorization at all."""
        headers = {"apikey": api_key("anon"), **kwargs.pop("headers", {})}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, f"{self.rest_url}/{path}", headers=headers, **kwargs)


@contextmanager
def local_stack(database_url: str, tmp: Path) -> Iterator[Stack]:
    endpoints = JwksEndpoints()
    keys = {name: SigningKey.rsa() for name in ("clerk", "auth0", "firebase", "custom")}
    for name, key in keys.items():
        endpoints.publish(name, key)
    with support.stack_base(database_url, tmp, jwt_secret=JWT_SECRET, upstash_token=UPSTASH_TOKEN,
                            rate_limit=RATE_LIMIT) as base:
        jwks = base.servers.enter_context(ServerThread(endpoints.app(), name="jwks"))
        providers = {
            "clerk": Provider("clerk", "https://clerk.e2e.test", "mimivibe-app", keys["clerk"]),
            "auth0": Provider("auth0", "https://e2e.auth0.test/", "https://api.e2e.test",
                              keys["auth0"]),
            "firebase": Provider("firebase", f"https://securetoken.google.com/{FIREBASE_PROJECT}",
                                 FIREBASE_PROJECT, keys["firebase"]),
            # Like the local stack's provider: a JWKS for RS256 and a shared HS256 secret.
            "custom": Provider("custom", "https://id.e2e.test", "mimivibe", keys["custom"],
                               secret=CUSTOM_SECRET),
        }
        functions_url = base.serve_functions({
            "CLERK_ISSUER": providers["clerk"].issuer,
            "CLERK_JWKS_URL": f"{jwks.url}/clerk/jwks.json",
            "CLERK_AUDIENCE": "mimivibe-app",
            "AUTH0_ISSUER": providers["auth0"].issuer,
            "AUTH0_AUDIENCE": "https://api.e2e.test",
            "AUTH0_JWKS_URL": f"{jwks.url}/auth0/jwks.json",
            "FIREBASE_PROJECT_ID": FIREBASE_PROJECT,
            "FIREBASE_JWKS_URL": f"{jwks.url}/firebase/jwks.json",
            "CUSTOM_ISSUER": providers["custom"].issuer,
            "CUSTOM_AUDIENCE": "mimivibe",
            "CUSTOM_HS256_SECRET": CUSTOM_SECRET,
            "CUSTOM_JWKS_URL": f"{jwks.url}/custom/jwks.json",
        })
        yield Stack(database_url, base.rest_url, functions_url, providers, base.http)
