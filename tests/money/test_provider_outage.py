"""Stripe unreachable: purchase and payment-methods setup answer 502 payment_provider_unavailable,
nothing is charged, and a retry with the same Idempotency-Key completes once Stripe is back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import stripe

from devstack.ports import free_port
from shared import bootstrap
from tests.money.stack import STRIPE_KEY, MoneyStack


@pytest.fixture
def stripe_down(stack: MoneyStack) -> Iterator[None]:
    """The functions' Stripe client points at a port nobody listens on, until the test ends."""
    unreachable = stripe.StripeClient(
        STRIPE_KEY, base_addresses={"api": f"http://127.0.0.1:{free_port()}"},
        max_network_retries=0)
    # The services built from Stripe's client (purchases, payment methods) are built again.
    bootstrap.override(stripe=unreachable)
    try:
        yield
    finally:
        bootstrap.reset()


def test_purchase_without_stripe_is_502_and_the_retry_completes(stack: MoneyStack,
                                                                stripe_down: None):
    user = stack.sign_in()
    key = str(uuid.uuid4())
    down = stack.call("purchase", user, key=key, json={"package": "basic"})
    setup = stack.call("payment-methods", user, path="/setup", key=str(uuid.uuid4()))

    for response in (down, setup):
        assert response.status_code == 502, response.text
        assert response.json()["error"]["code"] == "payment_provider_unavailable"
    assert stack.me(user)["star_balance"] == 0

    bootstrap.reset()  # Stripe is back
    retried = stack.call("purchase", user, key=key, json={"package": "basic"})

    assert retried.status_code == 201, retried.text
    payments = stack.rest("GET", "payments?select=id,stripe_payment_intent_id", user).json()
    assert payments == [{"id": retried.json()["payment_id"],
                         "stripe_payment_intent_id": retried.json()["payment_intent_id"]}]
