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


def test_rotated_key_is_picked_up_by_one_refetch(jwks_server):
    endpoints, name, verifier, issuer = _fresh(jwks_server, cooldown=0.2)
    old, new = SigningKey.rsa(), SigningKey.rsa()
    endpoints.publish(name, old)
    assert verifier.verify(old.sign(claims_for(issuer, None, subject="u1"))).external_id == "u1"

    endpoints.publish(name, new)
    time.sleep(0.25)
    assert verifier.verify(new.sign(claims_for(issuer, None, subject="u2"))).external_id == "u2"
    assert endpoints.fetch_count(name) == 2

    # The retired key is gone from the refreshed set.
    assert_unauthorized(verifier, old.sign(claims_for(issuer, None)), "unknown_key")


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
