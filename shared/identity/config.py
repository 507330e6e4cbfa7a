"""Build the identity verifier from settings: a provider is enabled when its issuer is set."""

from __future__ import annotations

from shared.errors import ConfigError
from shared.identity.keys import (
    JwksKeySource,
    KeySource,
    SecretOrJwksKeySource,
    SharedSecretKeySource,
)
from shared.identity.providers import ProviderVerifier, firebase_check
from shared.identity.verifier import IdentityVerifier
from shared.settings import Settings

FIREBASE_ISSUER_PREFIX = "https://securetoken.google.com/"


def _well_known_jwks(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/jwks.json"


def build_identity_verifier(
    settings: Settings,
    *,
    jwks_lifespan_seconds: float = 600.0,
    jwks_cooldown_seconds: float = 10.0,
    jwks_timeout_seconds: float = 5.0,
) -> IdentityVerifier:
    leeway = settings.token_leeway_seconds

    def jwks(url: str, algorithms: tuple[str, ...] = ("RS256",)) -> JwksKeySource:
        return JwksKeySource(
            url,
            algorithms,
            lifespan_seconds=jwks_lifespan_seconds,
            cooldown_seconds=jwks_cooldown_seconds,
            timeout_seconds=jwks_timeout_seconds,
        )

    providers: list[ProviderVerifier] = []
    if settings.clerk_issuer:
        providers.append(
            ProviderVerifier(
                name="clerk",
                issuer=settings.clerk_issuer,
                keys=jwks(settings.clerk_jwks_url or _well_known_jwks(settings.clerk_issuer)),
                audience=settings.clerk_audience,
                leeway_seconds=leeway,
                picture_claims=("picture", "image_url"),
            )
        )
    if settings.auth0_issuer:
        if not settings.auth0_audience:
            raise ConfigError("AUTH0_AUDIENCE is required when AUTH0_ISSUER is set.")
        providers.append(
            ProviderVerifier(
                name="auth0",
                issuer=settings.auth0_issuer,
                keys=jwks(settings.auth0_jwks_url or _well_known_jwks(settings.auth0_issuer)),
                audience=settings.auth0_audience,
                leeway_seconds=leeway,
            )
        )
    if settings.firebase_project_id:
        project = settings.firebase_project_id
        providers.append(
            ProviderVerifier(
                name="firebase",
                issuer=FIREBASE_ISSUER_PREFIX + project,
                keys=jwks(settings.firebase_jwks_url),
                audience=project,
                leeway_seconds=leeway,
                required_claims=("auth_time",),
                extra_check=firebase_check(leeway),
            )
        )
    if settings.custom_issuer:
        keys: KeySource
        secret, jwks_url = settings.custom_hs256_secret, settings.custom_jwks_url
        if secret and jwks_url:
            keys = SecretOrJwksKeySource(
                SharedSecretKeySource(secret), jwks(jwks_url, ("RS256", "ES256"))
            )
        elif secret:
            keys = SharedSecretKeySource(secret)
        elif jwks_url:
            keys = jwks(jwks_url, ("RS256", "ES256"))
        else:
            raise ConfigError("CUSTOM_ISSUER needs CUSTOM_HS256_SECRET or CUSTOM_JWKS_URL.")
        providers.append(
            ProviderVerifier(
                name="custom",
                issuer=settings.custom_issuer,
                keys=keys,
                audience=settings.custom_audience,
                leeway_seconds=leeway,
            )
        )
    return IdentityVerifier(providers)
