"""Provider token verification: each provider's keys, issuer, audience and claims."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.errors import ConfigError, Unauthorized
from shared.identity import IdentityVerifier, build_identity_verifier
from tests.identity.conftest import make_settings
from tests.identity.tokens import SigningKey, claims_for, forge, tamper

FIREBASE_PROJECT = "mimivibe-test"
CUSTOM_SECRET = "custom-provider-secret-of-32-bytes-or-more"


@dataclass
class Case:
    provider: str
    issuer: str
    audience: str | None
    key: SigningKey
    extra: dict[str, Any] = field(default_factory=dict)

    def claims(self, **changes: Any) -> dict[str, Any]:
        return claims_for(self.issuer, self.audience, **{**self.extra, **changes})

    def token(self, **changes: Any) -> str:
        return self.key.sign(self.claims(**changes))


@pytest.fixture(scope="module")
def world(jwks_server):
    endpoints, url = jwks_server
    tag = uuid.uuid4().hex[:8]
    keys = {name: SigningKey.rsa() for name in ("clerk", "auth0", "firebase", "custom")}
    for name, key in keys.items():
        endpoints.publish(f"{tag}-{name}", key)
    settings = make_settings(
        clerk_issuer="https://clerk.mimivibe.test",
        clerk_jwks_url=f"{url}/{tag}-clerk/jwks.json",
        clerk_audience="mimivibe-app",
        auth0_issuer="https://mimivibe.auth0.test/",
        auth0_jwks_url=f"{url}/{tag}-auth0/jwks.json",
        auth0_audience="https://api.mimivibe.test",
        firebase_project_id=FIREBASE_PROJECT,
        firebase_jwks_url=f"{url}/{tag}-firebase/jwks.json",
        custom_issuer="https://id.mimivibe.test",
        custom_jwks_url=f"{url}/{tag}-custom/jwks.json",
        custom_audience="mimivibe",
    )
    verifier = build_identity_verifier(settings, jwks_cooldown_seconds=60)
    cases = {
        "clerk": Case("clerk", "https://clerk.mimivibe.test", "mimivibe-app", keys["clerk"]),
        "auth0": Case(
            "auth0", "https://mimivibe.auth0.test/", "https://api.mimivibe.test", keys["auth0"]
        ),
        "firebase": Case(
            "firebase",
            f"https://securetoken.google.com/{FIREBASE_PROJECT}",
            FIREBASE_PROJECT,
            keys["firebase"],
            {"auth_time": int(time.time()) - 60},
        ),
        "custom": Case("custom", "https://id.mimivibe.test", "mimivibe", keys["custom"]),
    }
    return verifier, cases


PROVIDERS = ["clerk", "auth0", "firebase", "custom"]


def assert_unauthorized(verifier: IdentityVerifier, token: str, reason: str | None = None):
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    assert caught.value.status == 401
    assert caught.value.code == "unauthorized"
    if reason is not None:
        assert caught.value.details == {"reason": reason}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_valid_token_yields_the_provider_identity(world, provider):
    verifier, cases = world
    case = cases[provider]
    token = case.token(
        sub="ext-123", email="Somchai@Example.com", email_verified=True, name="Somchai",
        picture="https://img.example/p.png",
    )

    identity = verifier.verify(token)

    assert identity.provider == provider
    assert identity.external_id == "ext-123"
    assert identity.issuer == case.issuer
    assert identity.email == "Somchai@Example.com"
    assert identity.email_verified is True
    assert identity.name == "Somchai"
    assert identity.picture_url == "https://img.example/p.png"


def _bad_tokens(case: Case, other: Case) -> dict[str, tuple[str, str | None]]:
    now = int(time.time())
    stranger = SigningKey.rsa(kid=case.key.kid)
    return {
        "expired": (case.token(iat=now - 3600, exp=now - 300), "expired"),
        "not_yet_valid": (case.token(nbf=now + 600), "not_yet_valid"),
        "issued_in_the_future": (case.token(iat=now + 600, exp=now + 1200), "not_yet_valid"),
        "wrong_audience": (case.token(aud="someone-else"), "wrong_audience"),
        "no_audience": (case.token(aud=None), "missing_claim"),
        "unknown_issuer": (case.token(iss="https://evil.example/"), "unknown_issuer"),
        "issuer_of_another_provider": (case.token(iss=other.issuer, aud=other.audience), None),
        "bad_signature": (stranger.sign(case.claims()), "bad_signature"),
        "alg_none": (
            forge({"alg": "none", "typ": "JWT", "kid": case.key.kid}, case.claims()),
            "algorithm_not_allowed",
        ),
        "hs256_with_the_public_key": (
            forge({"alg": "HS256", "typ": "JWT", "kid": case.key.kid}, case.claims(),
                  hmac_key=case.key.public_pem()),
            "algorithm_not_allowed",
        ),
        "unknown_kid": (case.key.sign(case.claims(), kid="not-a-known-kid"), "unknown_key"),
        "tampered_payload": (tamper(case.token(sub="victim-1"), sub="attacker"), "bad_signature"),
        "no_expiry": (case.token(exp=None), "missing_claim"),
        "no_subject": (case.token(sub=""), None),
        "garbage": ("not.a.jwt", "malformed"),
    }


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "kind",
    ["expired", "not_yet_valid", "issued_in_the_future", "wrong_audience", "no_audience",
     "unknown_issuer", "issuer_of_another_provider", "bad_signature", "alg_none",
     "hs256_with_the_public_key", "unknown_kid", "tampered_payload", "no_expiry", "no_subject",
     "garbage"],
)
def test_invalid_token_is_unauthorized(world, provider, kind):
    verifier, cases = world
    other = cases[PROVIDERS[(PROVIDERS.index(provider) + 1) % len(PROVIDERS)]]
    token, reason = _bad_tokens(cases[provider], other)[kind]
    assert_unauthorized(verifier, token, reason)


def test_expiry_within_the_leeway_is_accepted(world):
    verifier, cases = world
    now = int(time.time())
    assert verifier.verify(cases["auth0"].token(iat=now - 100, exp=now - 5)).provider == "auth0"


def test_firebase_token_of_another_project_is_unauthorized(world):
    verifier, cases = world
    case = cases["firebase"]
    other_project = case.token(iss="https://securetoken.google.com/other", aud="other")
    assert_unauthorized(verifier, other_project, "unknown_issuer")
    right_issuer_other_audience = case.token(aud="other")
    assert_unauthorized(verifier, right_issuer_other_audience, "wrong_audience")


def test_firebase_token_needs_auth_time_in_the_past(world):
    verifier, cases = world
    case = cases["firebase"]
    assert_unauthorized(verifier, case.token(auth_time=int(time.time()) + 3600), "not_yet_valid")
    assert_unauthorized(verifier, case.token(auth_time=None), "missing_claim")


def test_unverified_or_string_email_flags_are_read_strictly(world):
    verifier, cases = world
    case = cases["custom"]
    assert verifier.verify(case.token(email="a@x.test")).email_verified is False
    assert verifier.verify(case.token(email="a@x.test", email_verified="true")).email_verified
    assert not verifier.verify(case.token(email="a@x.test", email_verified="yes")).email_verified


def test_clerk_image_url_is_the_picture(world):
    verifier, cases = world
    identity = verifier.verify(cases["clerk"].token(image_url="https://img.clerk.test/u.png"))
    assert identity.picture_url == "https://img.clerk.test/u.png"


def test_custom_provider_with_a_shared_hs256_secret():
    settings = make_settings(
        custom_issuer="http://127.0.0.1:8/local-idp", custom_hs256_secret=CUSTOM_SECRET
    )
    verifier = build_identity_verifier(settings)
    claims = claims_for("http://127.0.0.1:8/local-idp", None, subject="local-1")
    import jwt

    good = jwt.encode(claims, CUSTOM_SECRET, algorithm="HS256")
    assert verifier.verify(good).external_id == "local-1"

    wrong_secret = jwt.encode(claims, "another-secret-that-is-32-bytes-long!!", algorithm="HS256")
    assert_unauthorized(verifier, wrong_secret, "bad_signature")
    rs256 = SigningKey.rsa().sign(claims)
    assert_unauthorized(verifier, rs256, "algorithm_not_allowed")
    assert_unauthorized(verifier, tamper(good, sub="local-2"), "bad_signature")


def test_custom_provider_accepts_es256_through_jwks(jwks_server):
    endpoints, url = jwks_server
    name = uuid.uuid4().hex[:8]
    key = SigningKey.ec()
    endpoints.publish(name, key)
    settings = make_settings(custom_issuer="https://ec.test", custom_jwks_url=f"{url}/{name}/jwks.json")
    verifier = build_identity_verifier(settings)
    assert verifier.verify(key.sign(claims_for("https://ec.test", None))).provider == "custom"


def test_custom_provider_with_secret_and_jwks_keeps_each_algorithm_to_its_key(jwks_server):
    import jwt

    endpoints, url = jwks_server
    name = uuid.uuid4().hex[:8]
    key = SigningKey.rsa()
    endpoints.publish(name, key)
    settings = make_settings(custom_issuer="https://both.test", custom_hs256_secret=CUSTOM_SECRET,
                             custom_jwks_url=f"{url}/{name}/jwks.json")
    verifier = build_identity_verifier(settings)
    claims = claims_for("https://both.test", None)

    assert verifier.verify(key.sign(claims)).provider == "custom"
    assert verifier.verify(jwt.encode(claims, CUSTOM_SECRET, algorithm="HS256")).provider == "custom"
    forged = forge({"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims, hmac_key=key.public_pem())
    assert_unauthorized(verifier, forged, "bad_signature")


def test_no_provider_configured_rejects_every_token():
    verifier = build_identity_verifier(make_settings())
    assert_unauthorized(verifier, SigningKey.rsa().sign(claims_for("https://x.test", None)),
                        "unknown_issuer")


@pytest.mark.parametrize(
    "overrides",
    [
        {"auth0_issuer": "https://a.test/"},
        {"custom_issuer": "https://c.test"},
        {"clerk_issuer": "https://same.test", "custom_issuer": "https://same.test",
         "custom_hs256_secret": CUSTOM_SECRET},
    ],
)
def test_incomplete_provider_settings_fail_at_cold_start(overrides):
    with pytest.raises(ConfigError):
        build_identity_verifier(make_settings(**overrides))
