"""The Stripe stand-in inside the whole local stack (as `python -m devstack up` runs it): its URL
and signing secret are in stack.json, the functions are pointed at it, the webhook accepts what
that secret signs, and the journey's purchase sees its stars arrive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.journey import (
    Journey,
    buy_stars,
    dispute_holds_and_releases,
    pay_with_3d_secure,
    pay_with_promptpay,
    sign_in,
    sign_in_first_user,
)
from devstack.stack import LocalStack, read_stack_file
from devstack.stripe_standin import signature_header
from tests.money.events import card, event
from tests.support.local_stack import assert_wallets_consistent, running_local_stack


@pytest.fixture(scope="module")
def local(tmp_path_factory: Any, database_factory: Any
          ) -> Iterator[tuple[LocalStack, httpx.Client]]:
    with pytest.MonkeyPatch.context() as env:
        env.delenv("STRIPE_SECRET_KEY", raising=False)  # a developer's test key means test mode
        env.delenv("STRIPE_API_BASE", raising=False)
        with running_local_stack(tmp_path_factory.mktemp("stack"),
                                 database_factory(migrate=False, bootstrap=False)) as running:
            yield running
            assert_wallets_consistent(running[0].database_url)


def test_stack_json_carries_the_standins_url_and_signing_secret(local):
    stack, _ = local
    info = read_stack_file(stack.root)
    assert info is not None
    stripe = info["stripe"]
    assert stripe["url"] == info["urls"]["stripe"]
    assert stripe["webhook_url"] == info["functions"]["stripe-webhook"]
    assert stripe["webhook_secret"].startswith("whsec_")
    assert info["environment"]["STRIPE_API_BASE"] == stripe["url"]
    assert info["environment"]["STRIPE_WEBHOOK_SECRET"] == stripe["webhook_secret"]
    assert info["environment"]["STRIPE_SECRET_KEY"] == stripe["api_key"]


def test_the_webhook_accepts_what_the_stack_json_secret_signs(local):
    stack, client = local
    stripe = stack.info["stripe"]
    raw = json.dumps(event("payment_method.attached", card("cus_nobody")), indent=2).encode()
    for secret, status in (("whsec_someone_else", 400), (stripe["webhook_secret"], 200)):
        response = client.post(stripe["webhook_url"], content=raw, headers={
            "Stripe-Signature": signature_header(raw, secret),
            "Content-Type": "application/json"})
        assert response.status_code == status, response.text


def test_the_journey_buys_a_package_and_the_stars_arrive(local):
    stack, client = local
    journey = Journey(stack.info, client)
    sign_in_first_user(journey)
    buy_stars(journey)
    assert journey.me("first")["star_balance"] == 5
    assert journey.rpc("wallet_summary", journey.state["first"]["token"])["star_balance"] == 5


def test_the_journey_pays_with_promptpay_and_3d_secure_and_a_dispute_holds_stars(local, capsys):
    stack, client = local
    journey = Journey(stack.info, client)
    sign_in(journey, "first", "PromptPay")
    pay_with_promptpay(journey)
    pay_with_3d_secure(journey)
    dispute_holds_and_releases(journey)

    printed = capsys.readouterr().out
    assert "/_standin/promptpay/" in printed  # the hosted instructions URL
    assert "held" in printed and "dispute won" in printed
    summary = journey.rpc("wallet_summary", journey.state["first"]["token"])
    assert (summary["star_balance"], summary["held_stars"]) == (17 + 5, 0)
