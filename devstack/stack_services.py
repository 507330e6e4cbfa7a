"""The HTTP services of the local stack, one `Service` entry each, and the stack's local secrets.

An entry says the port it prefers, how to build its ASGI app from the running stack, what it
adds to the functions' environment and to stack.json, and what to do once everything is up.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt

if TYPE_CHECKING:
    from devstack.stack import LocalStack

KEY_LIFETIME_SECONDS = 10 * 365 * 24 * 3600
QSTASH_LOCAL_INTERVAL_SECONDS = 5.0


def _rsa_private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


_GENERATORS: dict[str, Callable[[], str]] = {
    "jwt_secret": lambda: secrets.token_urlsafe(48),
    "authenticator_password": lambda: secrets.token_urlsafe(24),
    "upstash_token": lambda: "local_" + secrets.token_urlsafe(32),
    "qstash_token": lambda: "qstash_local_" + secrets.token_urlsafe(24),
    "qstash_current_signing_key": lambda: "sig_" + secrets.token_urlsafe(24),
    "qstash_next_signing_key": lambda: "sig_" + secrets.token_urlsafe(24),
    "idp_hs256_secret": lambda: secrets.token_urlsafe(32),
    "idp_rsa_private_key_pem": _rsa_private_key_pem,
    "stripe_api_key": lambda: "sk_test_local_" + secrets.token_urlsafe(24),
    "stripe_webhook_secret": lambda: "whsec_" + secrets.token_urlsafe(32),
}


class StackSecrets:
    """Local secrets, generated on first use and kept in a file readable by the owner only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._values: dict[str, str] = (
            json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        )

    def get(self, name: str) -> str:
        if name not in self._values:
            self._values[name] = _GENERATORS[name]()
            self._save()
        return self._values[name]

    def _api_key(self, role: str) -> str:
        name = f"{role}_key"
        if name not in self._values:
            now = int(time.time())
            claims = {"iss": "supabase", "role": role, "iat": now,
                      "exp": now + KEY_LIFETIME_SECONDS}
            self._values[name] = jwt.encode(claims, self.get("jwt_secret"), algorithm="HS256")
            self._save()
        return self._values[name]

    @property
    def anon_key(self) -> str:
        return self._api_key("anon")

    @property
    def service_role_key(self) -> str:
        return self._api_key("service_role")

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._values, indent=2), encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(self.path)


def _nothing(stack: LocalStack) -> dict[str, Any]:
    return {}


def _no_action(stack: LocalStack) -> None:
    return None


def _always() -> bool:
    return True


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    app: Callable[[LocalStack], Any]
    environment: Callable[[LocalStack], dict[str, str]] = _nothing
    describe: Callable[[LocalStack], dict[str, Any]] = _nothing
    after_start: Callable[[LocalStack], None] = _no_action
    path: str = ""  # where the service answers under its server (e.g. /rest/v1)
    wanted: Callable[[], bool] = _always  # False: the real service is configured instead

    def display_url(self, stack: LocalStack) -> str:
        return stack.url(self.name) + self.path


# -- Supabase REST (PostgREST-compatible gateway) ------------------------------------------
def _rest_app(stack: LocalStack) -> Any:
    from devstack.gateway import GatewaySettings, create_app

    # The gateway answers under /rest/v1 itself, as Supabase's project URL does.
    return create_app(GatewaySettings(database_url=stack.authenticator_url,
                                      jwt_secret=stack.secrets.get("jwt_secret")))


def _rest_describe(stack: LocalStack) -> dict[str, Any]:
    return {"url": stack.url("supabase"), "rest_url": stack.url("supabase") + "/rest/v1",
            "anon_key": stack.secrets.anon_key, "service_role_key": stack.secrets.service_role_key}


def _rest_env(stack: LocalStack) -> dict[str, str]:
    return {
        "SUPABASE_URL": stack.url("supabase"),
        "SUPABASE_ANON_KEY": stack.secrets.anon_key,
        "SUPABASE_SERVICE_ROLE_KEY": stack.secrets.service_role_key,
        "SUPABASE_JWT_SECRET": stack.secrets.get("jwt_secret"),
    }


# -- Upstash Redis REST --------------------------------------------------------------------
def _upstash_app(stack: LocalStack) -> Any:
    from devstack.upstash_bridge import create_app

    return create_app(stack.redis_url, stack.secrets.get("upstash_token"))


def _upstash_env(stack: LocalStack) -> dict[str, str]:
    return {"UPSTASH_REDIS_REST_URL": stack.url("upstash"),
            "UPSTASH_REDIS_REST_TOKEN": stack.secrets.get("upstash_token")}


def _upstash_describe(stack: LocalStack) -> dict[str, Any]:
    return {"url": stack.url("upstash"), "token": stack.secrets.get("upstash_token")}


# -- QStash --------------------------------------------------------------------------------
def _qstash_settings(stack: LocalStack) -> Any:
    from devstack.qstash_standin.settings import QStashStandinSettings

    return QStashStandinSettings(
        token=stack.secrets.get("qstash_token"),
        current_signing_key=stack.secrets.get("qstash_current_signing_key"),
        next_signing_key=stack.secrets.get("qstash_next_signing_key"),
        schedule_interval_seconds=QSTASH_LOCAL_INTERVAL_SECONDS,
    )


def _qstash_app(stack: LocalStack) -> Any:
    from devstack.qstash_standin.app import create_app

    return create_app(_qstash_settings(stack))


def _qstash_env(stack: LocalStack) -> dict[str, str]:
    return {
        "QSTASH_URL": stack.url("qstash"),
        "QSTASH_TOKEN": stack.secrets.get("qstash_token"),
        "QSTASH_CURRENT_SIGNING_KEY": stack.secrets.get("qstash_current_signing_key"),
        "QSTASH_NEXT_SIGNING_KEY": stack.secrets.get("qstash_next_signing_key"),
        "JOB_CONSUMER_URL": stack.url("functions") + "/job-consumer",
    }


def _qstash_describe(stack: LocalStack) -> dict[str, Any]:
    return {k.lower(): v for k, v in _qstash_env(stack).items()}


def _qstash_schedule(stack: LocalStack) -> None:
    """Apply qstash/schedules.yml, the production schedules, with the local consumer URL."""
    if not (stack.serverless_yml.parent / "functions" / "job_consumer" / "handler.py").exists():
        return
    from pydantic import SecretStr

    from ops.qstash_schedules import apply, destinations, load
    from shared.qstash_client import build_qstash

    client = build_qstash(SecretStr(stack.secrets.get("qstash_token")), stack.url("qstash"))
    try:
        declared = load().for_local_stack()
        apply(client, declared, destinations(declared, _qstash_env(stack)))
    finally:
        client.http._client.close()


# -- Identity provider (the session function's `custom` provider) --------------------------
def _idp_app(stack: LocalStack) -> Any:
    from devstack.identity_provider import IdentityProviderSettings, create_app

    return create_app(IdentityProviderSettings(
        issuer=stack.url("identity"),
        hs256_secret=stack.secrets.get("idp_hs256_secret"),
        rsa_private_key_pem=stack.secrets.get("idp_rsa_private_key_pem"),
    ))


def _idp_env(stack: LocalStack) -> dict[str, str]:
    return {
        "CUSTOM_ISSUER": stack.url("identity"),
        "CUSTOM_AUDIENCE": "mimivibe",
        "CUSTOM_JWKS_URL": stack.url("identity") + "/.well-known/jwks.json",
        "CUSTOM_HS256_SECRET": stack.secrets.get("idp_hs256_secret"),
    }


def _idp_describe(stack: LocalStack) -> dict[str, Any]:
    base = stack.url("identity")
    # The shared secret lets tools sign HS256 custom tokens without calling the provider.
    return {"issuer": base, "audience": "mimivibe", "token_url": base + "/token",
            "jwks_url": base + "/.well-known/jwks.json",
            "hs256_secret": stack.secrets.get("idp_hs256_secret")}


# -- Stripe (stand-in, unless a real Stripe test key is configured) ------------------------
STRIPE_TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")


def stripe_test_mode() -> bool:
    """True when STRIPE_SECRET_KEY (in the stack's own environment) is a Stripe test key: the
    functions then talk to Stripe's test mode, and webhooks come through
    `stripe listen --forward-to <functions>/stripe-webhook` signed with STRIPE_WEBHOOK_SECRET.
    The local stack never runs with a live key."""
    key = os.environ.get("STRIPE_SECRET_KEY", "")
    if not key:
        return False
    if not key.startswith(STRIPE_TEST_KEY_PREFIXES):
        raise RuntimeError("STRIPE_SECRET_KEY is not a Stripe test key (sk_test_ or rk_test_); "
                           "the local stack never uses live keys. Unset it to use the stand-in.")
    if not os.environ.get("STRIPE_WEBHOOK_SECRET"):
        raise RuntimeError("Stripe test mode needs STRIPE_WEBHOOK_SECRET: the secret that "
                           "`stripe listen --print-secret` prints.")
    return True


def _stripe_wanted() -> bool:
    return not stripe_test_mode()


def _stripe_webhook_url(stack: LocalStack) -> str:
    return stack.url("functions") + "/stripe-webhook"


def _stripe_app(stack: LocalStack) -> Any:
    from devstack.stripe_standin import StripeStandinSettings, create_app

    return create_app(StripeStandinSettings(
        api_key=stack.secrets.get("stripe_api_key"),
        webhook_secret=stack.secrets.get("stripe_webhook_secret"),
        webhook_url=_stripe_webhook_url(stack),
    ))


def _stripe_env(stack: LocalStack) -> dict[str, str]:
    return {"STRIPE_SECRET_KEY": stack.secrets.get("stripe_api_key"),
            "STRIPE_WEBHOOK_SECRET": stack.secrets.get("stripe_webhook_secret"),
            "STRIPE_API_BASE": stack.url("stripe")}


def _stripe_describe(stack: LocalStack) -> dict[str, Any]:
    return {"url": stack.url("stripe"), "api_key": stack.secrets.get("stripe_api_key"),
            "webhook_secret": stack.secrets.get("stripe_webhook_secret"),
            "webhook_url": _stripe_webhook_url(stack)}


# -- Function URLs (last: they see the environment the entries above produced) -------------
def _functions_app(stack: LocalStack) -> Any:
    from devstack.function_urls import create_app

    return create_app(stack.serverless_yml, stack.environment)


def _functions_env(stack: LocalStack) -> dict[str, str]:
    # In Stripe test mode the client must use Stripe's own API host, whatever STRIPE_API_BASE
    # the shell had (empty means the default).
    return {"STRIPE_API_BASE": ""} if stripe_test_mode() else {}


def _functions_describe(stack: LocalStack) -> dict[str, Any]:
    from devstack.lambda_context import load_functions

    base = stack.url("functions")
    return {name: f"{base}/{name}" for name in load_functions(stack.serverless_yml)}


SERVICES: list[Service] = [
    Service("supabase", 54321, _rest_app, _rest_env,
            describe=_rest_describe, path="/rest/v1"),
    Service("upstash", 54329, _upstash_app, _upstash_env,
            describe=_upstash_describe),
    Service("qstash", 54330, _qstash_app, _qstash_env,
            describe=_qstash_describe, after_start=_qstash_schedule),
    Service("identity", 54331, _idp_app, _idp_env,
            describe=_idp_describe),
    Service("stripe", 12111, _stripe_app, _stripe_env,
            describe=_stripe_describe, wanted=_stripe_wanted),
    Service("functions", 3000, _functions_app, _functions_env,
            describe=_functions_describe),
]
