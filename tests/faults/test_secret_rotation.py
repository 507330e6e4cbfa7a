"""A rotated secret reaches the clients that use it: after Stripe's webhook secret and the
QStash signing keys are rotated, the functions pick the new values up from the secret within
its refresh interval, and the webhooks Stripe retried meanwhile are applied once."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devstack.qstash_standin.signing import sign_delivery
from shared.secrets import AwsSecret, use_secret_source
from shared.settings import reset_settings
from tests.faults.stack import FaultStack, wait_for


class RotatingSecret(AwsSecret):
    """The function's secret as Secrets Manager would serve it after a rotation: our own
    interface (`load()`), with values the test changes."""

    def __init__(self, values: dict[str, str]) -> None:
        self.secret_id = "mimivibe/faults/functions"
        self.max_age = 0
        self.values = dict(values)

    def load(self) -> dict[str, str]:
        return dict(self.values)


@pytest.fixture
def secret(healthy: FaultStack) -> Iterator[RotatingSecret]:
    environment = healthy.stack.environment
    source = RotatingSecret({name: environment[name] for name in (
        "STRIPE_WEBHOOK_SECRET", "QSTASH_CURRENT_SIGNING_KEY", "QSTASH_NEXT_SIGNING_KEY")})
    use_secret_source(source)
    reset_settings()
    try:
        yield source
    finally:
        # The stack keeps the rotated values for the tests after this one.
        healthy.signing_key = source.values["QSTASH_CURRENT_SIGNING_KEY"]
        healthy.stack.environment.update(source.values)
        use_secret_source(None)
        os.environ.update(source.values)
        reset_settings()


def test_rotated_stripe_and_qstash_secrets_reach_the_functions(
        healthy: FaultStack, secret: RotatingSecret) -> None:
    user = healthy.funded_user()
    stars = healthy.stars(user)
    stripe = healthy.stripe
    new_webhook_secret = stripe.rotate_secret(expire_previous_after=0)

    bought = healthy.purchase(user)
    assert bought.status == 201, bought.response.text
    intent = bought.response.json()["payment_intent_id"]

    def refused() -> bool:
        return any(a["status"] == 400 for e in stripe.events("payment_intent.succeeded")
                   if e["object_id"] == intent for a in e["attempts"])

    # Signed with the new secret, which the function does not know yet: refused, retried.
    wait_for("the webhook signed with the new secret to be refused", refused)
    assert healthy.stars(user) == stars

    secret.values["STRIPE_WEBHOOK_SECRET"] = new_webhook_secret
    old_key = secret.values["QSTASH_CURRENT_SIGNING_KEY"]
    secret.values["QSTASH_CURRENT_SIGNING_KEY"] = secret.values["QSTASH_NEXT_SIGNING_KEY"]
    secret.values["QSTASH_NEXT_SIGNING_KEY"] = "sig_rotated_next_0123456789abcdef"

    wait_for("Stripe's retry to be applied", lambda: healthy.stars(user) == stars + 5)
    healthy.converge()
    assert healthy.stars(user) == stars + 5
    url = healthy.stack.info["urls"]["functions"] + "/"
    signed_with = {
        key: healthy.call("job-consumer", content=b"{}", headers={
            "content-type": "application/json",
            "Upstash-Signature": sign_delivery(key, url=url, body=b"{}")}).status
        for key in (old_key, secret.values["QSTASH_CURRENT_SIGNING_KEY"],
                    secret.values["QSTASH_NEXT_SIGNING_KEY"])}
    assert list(signed_with.values()) == [401, 200, 200]
