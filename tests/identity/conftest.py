"""Fixtures for the identity tests: settings builders and a local JWKS server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devstack.serve import ServerThread
from shared.settings import Settings
from tests.identity.tokens import JwksEndpoints

JWT_SECRET = "test-jwt-secret-with-at-least-32-characters!"


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "supabase_url": "http://127.0.0.1:9",
        "supabase_anon_key": "anon",
        "supabase_service_role_key": "service",
        "supabase_jwt_secret": JWT_SECRET,
        # Every identity setting explicitly, so a stack running in this process (which sets
        # them in os.environ) cannot leak into these settings.
        "clerk_issuer": None,
        "clerk_jwks_url": None,
        "clerk_audience": None,
        "auth0_issuer": None,
        "auth0_jwks_url": None,
        "auth0_audience": None,
        "firebase_project_id": None,
        "custom_issuer": None,
        "custom_audience": None,
        "custom_hs256_secret": None,
        "custom_jwks_url": None,
        "token_leeway_seconds": 30,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[tuple[JwksEndpoints, str]]:
    endpoints = JwksEndpoints()
    with ServerThread(endpoints.app(), name="jwks") as server:
        yield endpoints, server.url


@pytest.fixture(scope="package")
def stack(database_factory, tmp_path_factory):
    """The local stack with the real session handler behind a function URL.

    Package-scoped: it sets the functions' environment in os.environ (as the function-URL
    server does) and restores it when the identity tests are done.
    """
    from tests.identity.stack import local_stack

    with local_stack(database_factory(migrate=True), tmp_path_factory.mktemp("stack")) as running:
        yield running
