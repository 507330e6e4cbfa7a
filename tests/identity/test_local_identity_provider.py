"""The local identity provider of the stack issues tokens the `custom` verifier accepts."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from devstack.identity_provider import IdentityProviderSettings, create_app
from devstack.serve import ServerThread
from shared.errors import Unauthorized
from shared.identity import build_identity_verifier
from tests.identity.conftest import make_settings

SECRET = "local-idp-shared-secret-of-32-bytes-min"


@pytest.fixture(scope="module")
def idp():
    app = create_app(IdentityProviderSettings(hs256_secret=SecretStr(SECRET)))
    with ServerThread(app, name="identity-provider") as server:
        settings = make_settings(
            custom_issuer=server.url, custom_audience="mimivibe", custom_hs256_secret=SECRET,
            custom_jwks_url=f"{server.url}/.well-known/jwks.json",
        )
        yield server.url, build_identity_verifier(settings)


def issue(url: str, alg: str, **body: object) -> str:
    response = httpx.post(f"{url}/token", params={"alg": alg}, json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["id_token"]


@pytest.mark.parametrize("alg", ["RS256", "HS256"])
def test_local_provider_tokens_verify_as_custom_identities(idp, alg):
    url, verifier = idp
    token = issue(url, alg, sub="local-user-1", email="nok@example.test", email_verified=True,
                  name="Nok")

    identity = verifier.verify(token)

    assert identity.provider == "custom"
    assert identity.external_id == "local-user-1"
    assert identity.email == "nok@example.test" and identity.email_verified is True
    assert identity.name == "Nok"


def test_local_provider_expired_or_foreign_audience_tokens_are_refused(idp):
    url, verifier = idp
    for body in ({"sub": "u", "expires_in": -120}, {"sub": "u", "audience": "another-app"}):
        with pytest.raises(Unauthorized):
            verifier.verify(issue(url, "RS256", **body))


def test_local_provider_refuses_unknown_algorithms_and_fields(idp):
    url, _ = idp
    for params, body in (({"alg": "none"}, {"sub": "u"}), ({"alg": "HS512"}, {"sub": "u"}),
                         ({}, {"sub": "u", "role": "admin"}), ({}, {"email": "x@y.test"})):
        response = httpx.post(f"{url}/token", params=params, json=body, timeout=10)
        assert response.status_code == 400, (params, body, response.text)
        assert "id_token" not in response.json()


def test_local_provider_without_a_secret_issues_rs256_only():
    with ServerThread(create_app(IdentityProviderSettings(hs256_secret=None)),
                      name="identity-provider") as server:
        refused = httpx.post(f"{server.url}/token", params={"alg": "HS256"}, json={"sub": "u"},
                             timeout=10)
        rs256 = issue(server.url, "RS256", sub="u")
    assert refused.status_code == 400
    assert refused.json()["error"] == "unsupported_algorithm"
    assert rs256.count(".") == 2
