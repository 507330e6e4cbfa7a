"""Which Stripe the local stack's functions talk to: the stand-in by default, Stripe's test mode
when a Stripe test key is configured (never the stand-in's address then), never a live key."""

from __future__ import annotations

import pytest

from devstack.stack_services import SERVICES, Service
from shared.settings import Settings
from shared.stripe_client import build_stripe_client

STALE_STANDIN = "http://127.0.0.1:12111"


def service(name: str) -> Service:
    return next(s for s in SERVICES if s.name == name)


def test_without_a_stripe_key_the_stack_runs_the_standin(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    assert service("stripe").wanted()
    assert service("functions").environment(None) == {}  # type: ignore[arg-type]


def test_a_stripe_test_key_means_stripe_test_mode_at_stripes_own_host(
        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_from_stripe_listen")
    monkeypatch.setenv("STRIPE_API_BASE", STALE_STANDIN)  # left over from a stand-in session

    assert not service("stripe").wanted()
    environment = service("functions").environment(None)  # type: ignore[arg-type]
    assert environment == {"STRIPE_API_BASE": ""}

    monkeypatch.setenv("STRIPE_API_BASE", environment["STRIPE_API_BASE"])
    client = build_stripe_client(Settings(
        supabase_url="http://127.0.0.1:9", supabase_anon_key="anon",
        supabase_service_role_key="service", supabase_jwt_secret="jwt"))
    assert client._requestor.base_addresses["api"] == "https://api.stripe.com"


@pytest.mark.parametrize(("key", "webhook_secret", "complaint"), [
    ("sk_live_" + "0" * 24, "whsec_x", "never uses live keys"),
    ("rk_live_" + "0" * 24, "whsec_x", "never uses live keys"),
    ("sk_test_" + "0" * 24, None, "STRIPE_WEBHOOK_SECRET"),
])
def test_a_live_key_or_a_test_key_without_its_webhook_secret_is_refused(
        monkeypatch: pytest.MonkeyPatch, key: str, webhook_secret: str | None, complaint: str):
    monkeypatch.setenv("STRIPE_SECRET_KEY", key)
    if webhook_secret is None:
        monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    else:
        monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", webhook_secret)
    with pytest.raises(RuntimeError, match=complaint):
        service("stripe").wanted()
