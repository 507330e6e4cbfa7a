"""Every object and event the Stripe stand-in produces over a Thai customer's payments (cards
with and without 3-D Secure, declines, PromptPay paid and expired, refunds in each status,
disputes won and lost, customer sessions) has the shape Stripe's definitions give it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from devstack.serve import ServerThread
from devstack.stripe_standin import Standin, StripeStandinSettings, create_app
from shared.stripe_webhooks import HANDLED_TYPES
from tests.money.stripe_shapes import sdk_violations, spec_violations

API_KEY = "sk_test_shapes_" + "0123456789"
EMAIL = {"type": "promptpay", "billing_details": {"email": "mimi@example.com"}}
# Objects newer than the specification's date: only the SDK's classes define them.
NEWER_THAN_THE_SPEC = {"customer_session"}


@pytest.fixture(scope="module")
def produced() -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """(objects, events) after one of each path a payment can take."""
    app = create_app(StripeStandinSettings(api_key=API_KEY, webhook_secret="whsec_shapes"))
    standin: Standin = app.state.standin
    with ServerThread(app, name="stripe-shapes") as server:
        client = stripe.StripeClient(API_KEY, base_addresses={"api": server.url},
                                     max_network_retries=0)
        responses = drive(client, standin)
        with standin.state.lock:
            stored = [copy.deepcopy(o) for collection in standin.state.collections.values()
                      for o in collection.values()]
            events = [copy.deepcopy(e) for e in standin.state.events.values()]
    yield stored + responses, events


def drive(client: stripe.StripeClient, standin: Standin) -> list[dict[str, Any]]:
    v1 = client.v1
    customer = v1.customers.create({"email": "mimi@example.com"}).id
    session = v1.customer_sessions.create({"customer": customer, "components": {
        "mobile_payment_element": {"enabled": True, "features": {
            "payment_method_redisplay": "enabled"}}}})
    setup = v1.setup_intents.create({"customer": customer, "payment_method": "pm_card_visa",
                                     "confirm": True})

    def intent(**params: Any) -> stripe.PaymentIntent:
        create: dict[str, Any] = {"amount": 14900, "currency": "thb", "customer": customer,
                                  **params}
        return v1.payment_intents.create(create)  # type: ignore[arg-type]

    asked = v1.setup_intents.create({"customer": customer, "confirm": True,
                                     "payment_method": "pm_card_threeDSecure2Required"})
    standin.authenticate(asked.id, "fail")
    spare = v1.payment_methods.attach("pm_card_mastercard", {"customer": customer}).id
    v1.payment_methods.update(spare, {"metadata": {"label": "spare"}})
    v1.payment_methods.detach(spare)
    sheet = intent(payment_method_types=["card"])
    v1.payment_intents.cancel(intent().id)
    paid = intent(payment_method=str(setup.payment_method), confirm=True)
    frictionless = intent(payment_method="pm_card_threeDSecureOptional", confirm=True)
    challenged = intent(payment_method="pm_card_threeDSecure2Required", confirm=True,
                        use_stripe_sdk=True)
    redirected = intent(payment_method="pm_card_authenticationRequired", confirm=True,
                        return_url="https://mimivibe.example/return")
    failed = intent(payment_method="pm_card_threeDSecureRequired", confirm=True)
    with pytest.raises(stripe.CardError):
        intent(payment_method="pm_card_chargeDeclinedInsufficientFunds", confirm=True)
    with pytest.raises(stripe.CardError):
        intent(payment_method="pm_card_authenticationRequired", confirm=True,
               off_session=True)
    qr = intent(payment_method_types=["promptpay"], payment_method_data=EMAIL, confirm=True)
    expired = intent(payment_method_types=["promptpay"], payment_method_data=EMAIL,
                     confirm=True)
    answered = [o.to_dict() for o in (session, setup, asked, sheet, challenged, redirected, qr)]

    standin.authenticate(challenged.id, "complete")
    standin.authenticate(failed.id, "fail")
    standin.settle_promptpay(qr.id, "pay")
    standin.settle_promptpay(expired.id, "expire")

    refund = v1.refunds.create  # the card one succeeds, the PromptPay ones wait for details
    refund({"payment_intent": paid.id, "amount": 1000})
    standin.set_refund_start("pending")
    standin.move_refund(refund({"payment_intent": paid.id, "amount": 1000}).id, "failed")
    standin.move_refund(refund({"payment_intent": frictionless.id, "amount": 1000}).id,
                        "succeeded")
    standin.set_refund_start(None)
    waiting = refund({"payment_intent": qr.id, "amount": 1000})
    v1.refunds.cancel(refund({"payment_intent": qr.id, "amount": 1000}).id)
    answered.append(waiting.to_dict())

    for charge, outcome in ((challenged.id, "won"), (frictionless.id, "lost")):
        latest = str(v1.payment_intents.retrieve(charge).latest_charge)
        standin.close_dispute(standin.open_dispute(latest)["id"], outcome)
    argued = standin.open_dispute(str(v1.payment_intents.retrieve(paid.id).latest_charge))
    v1.disputes.update(argued["id"], {"evidence": {"uncategorized_text": "winning_evidence"},
                                      "submit": True})
    return answered


def test_every_object_matches_stripes_specification_and_sdk(produced):
    objects, events = produced
    inside = [e["data"]["object"] for e in events]
    kinds = {o["object"] for o in objects}
    assert kinds >= {"customer", "customer_session", "payment_method", "setup_intent",
                     "payment_intent", "charge", "refund", "dispute", "event"}
    violations = sorted({v for o in objects + inside for v in (
        [] if o["object"] in NEWER_THAN_THE_SPEC else spec_violations(o)) + sdk_violations(o)})
    assert violations == []


def test_every_event_envelope_matches_and_every_handled_type_is_produced(produced):
    _, events = produced
    assert sorted({v for e in events for v in spec_violations(e) + sdk_violations(e)}) == []
    produced_types = {e["type"] for e in events}
    # Neither cards nor PromptPay pass through processing in Stripe's test mode.
    assert HANDLED_TYPES - produced_types == {"payment_intent.processing"}
    statuses = {(e["data"]["object"]["object"], e["data"]["object"].get("status"))
                for e in events}
    assert {("refund", s) for s in ("requires_action", "pending", "succeeded", "failed",
                                    "canceled")} <= statuses
    assert {("dispute", s) for s in ("needs_response", "under_review", "won", "lost")} \
        <= statuses


def test_the_checks_see_a_missing_field(produced):
    objects, _ = produced
    dispute = copy.deepcopy(next(o for o in objects if o["object"] == "dispute"))
    del dispute["balance_transactions"][0]["reporting_category"]
    del dispute["enhanced_eligibility_types"]
    assert any("reporting_category" in v for v in spec_violations(dispute))
    assert any("enhanced_eligibility_types" in v for v in sdk_violations(dispute))
