"""The webhook's signature check: Stripe's scheme on the raw body, 300 s tolerance, several v1
signatures during a secret roll, bodies the function URL hands over base64-encoded."""

from __future__ import annotations

import base64
import json
import time

import pytest
import stripe

from functions.stripe_webhook.handler import handler
from shared.errors import InvalidWebhookSignature
from shared.stripe_webhooks import verify_signature
from tests.money.events import card, event, signed
from tests.money.stack import WEBHOOK_SECRET, MoneyStack

OLD, NEW = "whsec_previous_secret", "whsec_rolled_secret"


def body() -> bytes:
    return json.dumps(event("customer.created", {"id": "cus_123", "object": "customer"}),
                      indent=2).encode()


def test_a_header_made_by_stripe_python_verifies():
    raw = body()
    header = stripe.WebhookSignature.generate_signature_header(raw.decode(), NEW)
    verify_signature(raw, header, [NEW])


@pytest.mark.parametrize("case", ["stale", "future", "forged", "reserialized", "missing",
                                  "malformed", "no_v1"])
def test_bad_signatures_are_refused(case):
    raw = body()
    now = int(time.time())
    header = {
        "stale": signed(raw, NEW, now - 301)[1],
        "future": signed(raw, NEW, now + 301)[1],
        "forged": signed(raw, "whsec_somebody_else")[1],
        "reserialized": signed(json.dumps(json.loads(raw)).encode(), NEW)[1],
        "missing": None,
        "malformed": "v1=abc,t=yesterday",
        "no_v1": f"t={now},v0=" + "0" * 64,
    }[case]
    with pytest.raises(InvalidWebhookSignature):
        verify_signature(raw, header, [NEW])


def test_a_signature_within_the_tolerance_passes():
    raw = body()
    verify_signature(raw, signed(raw, NEW, int(time.time()) - 290)[1], [NEW])


@pytest.mark.parametrize("configured", [[OLD], [NEW], [NEW, OLD]])
def test_during_a_roll_either_signature_is_accepted(configured):
    raw, header = signed(body(), [NEW, OLD])
    assert header.count("v1=") == 2
    verify_signature(raw, header, configured)


def post(stack: MoneyStack, raw: bytes, header: str | None, content_type: str):
    headers = {"Content-Type": content_type}
    if header is not None:
        headers["Stripe-Signature"] = header
    return stack.http.post(f"{stack.functions_url}/stripe-webhook", content=raw, headers=headers)


def test_the_function_url_refuses_a_bad_signature_with_400(stack: MoneyStack):
    raw, header = signed(body(), "whsec_forged")
    response = post(stack, raw, header, "application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert post(stack, raw, None, "application/json").status_code == 400


def test_a_base64_encoded_body_verifies_on_its_decoded_bytes(stack: MoneyStack):
    # Without a text content type the function URL hands the body over base64-encoded.
    raw, header = signed(body(), WEBHOOK_SECRET)
    response = post(stack, raw, header, "application/octet-stream")
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "duplicate": False}


def test_a_handled_event_is_applied_once_and_then_reported_duplicate(stack: MoneyStack):
    raw, header = signed(event("payment_method.attached", card("cus_nobody")), WEBHOOK_SECRET)
    first = post(stack, raw, header, "application/json")
    again = post(stack, raw, header, "application/json")
    assert first.json() == {"received": True, "duplicate": False}
    assert again.json() == {"received": True, "duplicate": True}


def test_a_signed_body_that_is_not_an_event_is_invalid_payload(stack: MoneyStack):
    raw, header = signed(b'{"id": "not-an-event"}', WEBHOOK_SECRET)
    response = post(stack, raw, header, "application/json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_payload")


def test_the_handler_reads_lambda_base64_events_directly(stack: MoneyStack):
    raw, header = signed(body(), WEBHOOK_SECRET)
    lambda_event = {"version": "2.0", "rawPath": "/", "isBase64Encoded": True,
                    "body": base64.b64encode(raw).decode(),
                    "headers": {"stripe-signature": header},
                    "requestContext": {"http": {"method": "POST"}, "requestId": "r-1"}}
    result = handler(lambda_event, None)
    assert result["statusCode"] == 200
    assert json.loads(result["body"]) == {"received": True, "duplicate": False}
