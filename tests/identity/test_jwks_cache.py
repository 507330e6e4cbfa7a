"""JWKS handling of the verifiers: fetched lazily, cached, refetched once on rotation."""

from __future__ import annotations

import time
import uuid

import pytest

from devstack.ports import free_port
from shared.errors import ServiceUnavailable
from shared.identity import build_identity_verifier
from tests.identity.conftest import make_settings
from tests.identity.test_verifiers import assert_unauthorized
from tests.identity.tokens import SigningKey, claims_for


def _fresh(jwks_server, *, cooldown: float, name: str | None = None):
    endpoints, url = jwks_server
    name = name or uuid.uuid4().hex[:8]
    settings = make_settings(
        clerk_issuer=f"https://{name}.clerk.test", clerk_jwks_url=f"{url}/{name}/jwks.json"
    )
    verifier = build_identity_verifier(settings, jwks_cooldown_seconds=cooldown)
    return endpoints, name, verifier, f"https://{name}.clerk.test"


def test_jwks_is_fetched_lazily_and_cached(jwks_server):
    endpoints, name, verifier, issuer = _fresh(jwks_server, cooldown=60)
    key = SigningKey.rsa()
    endpoints.publish(name, key)
    assert endpoints.fetch_count(name) == 0

    for _ in range(5):
        assert verifier.verify(key.sign(claims_for(issuer, None))).provider == "clerk"

    assert endpoints.fetch_count(name) == 1


def test_unknown_kids_do_not_refetch_on_every_request(jwks_server):
    endpoints, name, verifier, issuer = _fresh(jwks_server, cooldown=60)
    key = SigningKey.rsa()
    endpoints.publish(name, key)
    verifier.verify(key.sign(claims_for(issuer, None)))

    for _ in range(20):
        token = key.sign(claims_for(issuer, None), kid=uuid.uuid4().hex)
        assert_unauthorized(verifier, token, "unknown_key")

    assert endpoints.fetch_count(name) <= 2


def _rotating(jwks_server, provider: str):
    """A verifier with only `provider` on, its JWKS at a fresh path; (endpoints, name, verifier,
    claims factory)."""
    endpoints, url = jwks_server
    name = uuid.uuid4().hex[:8]
    jwks_url = f"{url}/{name}/jwks.json"
    issuer, audience = {
        "clerk": (f"https://{name}.clerk.test", None),
        "auth0": (f"https://{name}.auth0.test/", "api"),
        "firebase": (f"https://securetoken.google.com/{name}", name),
        "custom": (f"https://{name}.id.test", None),
    }[provider]
    settings = make_settings(**{
        "clerk": {"clerk_issuer": issuer, "clerk_jwks_url": jwks_url},
        "auth0": {"auth0_issuer": issuer, "auth0_jwks_url": jwks_url, "auth0_audience": "api"},
        "firebase": {"firebase_project_id": name, "firebase_jwks_url": jwks_url},
        "custom": {"custom_issuer": issuer, "custom_jwks_url": jwks_url},
    }[provider])
    verifier = build_identity_verifier(settings, jwks_cooldown_seconds=0.2)
    extra = {"auth_time": int(time.time()) - 60} if provider == "firebase" else {}

    def claims(subject: str | None = None):
        return claims_for(issuer, audience, subject=subject, **extra)

    return endpoints, name, verifier, claims


@pytest.mark.parametrize("provider", ["clerk", "auth0", "firebase", "custom"])
def test_rotated_key_is_picked_up_by_one_refetch(jwks_server, provider):
    endpoints, name, verifier, claims = _rotating(jwks_server, provider)
    old, new = SigningKey.rsa(), SigningKey.rsa()
    endpoints.publish(name, old)
    assert verifier.verify(old.sign(claims("u1"))).external_id == "u1"

    # The provider publishes the next key next to the current one, then signs with it.
    endpoints.publish(name, old, new)
    time.sleep(0.25)
    assert verifier.verify(new.sign(claims("u2"))).external_id == "u2"
    assert verifier.verify(old.sign(claims("u3"))).external_id == "u3"
    assert endpoints.fetch_count(name) == 2

    # The retired key is dropped; once the set is refetched, its tokens are refused.
    endpoints.publish(name, new)
    time.sleep(0.25)
    assert_unauthorized(verifier, SigningKey.rsa().sign(claims()), "unknown_key")
    assert endpoints.fetch_count(name) == 3
    assert_unauthorized(verifier, old.sign(claims()), "unknown_key")
    assert verifier.verify(new.sign(claims("u4"))).external_id == "u4"
    assert endpoints.fetch_count(name) <= 4


def test_unreachable_jwks_is_service_unavailable():
    closed = free_port()
    settings = make_settings(
        auth0_issuer="https://down.auth0.test/",
        auth0_jwks_url=f"http://127.0.0.1:{closed}/jwks.json",
        auth0_audience="api",
    )
    verifier = build_identity_verifier(settings, jwks_timeout_seconds=2)
    token = SigningKey.rsa().sign(claims_for("https://down.auth0.test/", "api"))
    with pytest.raises(ServiceUnavailable):
        verifier.verify(token)
