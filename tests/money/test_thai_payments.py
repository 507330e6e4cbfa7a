"""How Thai customers pay, end to end through the function URLs and the Stripe stand-in: saved
cards confirmed with the customer present (3-D Secure asked, completed or failed), declines,
PromptPay QR codes paid or expired."""

from __future__ import annotations

import uuid

from tests.money.stack import MoneyStack, User
from tests.money.test_purchase import payment_rows, save_card


def buy(stack: MoneyStack, user: User, body: dict, key: str | None = None):
    return stack.call("purchase", user, key=key or str(uuid.uuid4()), json=body)


def row_of(stack: MoneyStack, user: User, payment_id: str) -> dict:
    [row] = [r for r in payment_rows(stack, user) if r["id"] == payment_id]
    return row


def confirmed_with_customer_present(stack: MoneyStack, intent_id: str) -> bool:
    """The PaymentIntent was created confirmed, and never as an off-session payment."""
    with stack.standin.state.lock:
        created = [r.params for r in stack.standin.state.idempotency.values()
                   if r.path == "/v1/payment_intents" and intent_id.encode() in r.body]
    return len(created) == 1 and created[0].get("confirm") == "true" \
        and "off_session" not in created[0]


def test_a_saved_card_that_authenticates_without_a_challenge_pays_at_once(stack: MoneyStack):
    user = stack.sign_in()
    card = save_card(stack, user, "pm_card_threeDSecureOptional")
    response = buy(stack, user, {"package": "starter", "payment_method_id": card["id"]})

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["next_action"]) == ("succeeded", None)
    assert confirmed_with_customer_present(stack, body["payment_intent_id"])
    stack.wait_for(lambda: stack.me(user)["star_balance"] == 5)


def test_a_saved_card_asking_for_3ds_is_requires_action_and_pays_once_completed(
        stack: MoneyStack):
    user = stack.sign_in()
    card = save_card(stack, user, "pm_card_authenticationRequiredOnSetup")
    key = str(uuid.uuid4())
    body = {"package": "basic", "payment_method_id": card["id"]}
    response = buy(stack, user, body, key)

    assert response.status_code == 201, response.text
    asked = response.json()
    assert asked["status"] == "requires_action"
    assert asked["next_action"] == {"type": "use_stripe_sdk", "redirect_url": None}
    assert asked["client_secret"].startswith(asked["payment_intent_id"])
    assert confirmed_with_customer_present(stack, asked["payment_intent_id"])
    stack.control.wait_for_event("payment_intent.requires_action", asked["payment_intent_id"])
    assert row_of(stack, user, asked["payment_id"])["status"] == "requires_action"
    assert buy(stack, user, body, key).json() == asked  # a replay: same payment and secret

    stack.control.authenticate(asked["payment_intent_id"], "complete")
    stack.wait_for(lambda: stack.me(user)["star_balance"] == 17)
    assert row_of(stack, user, asked["payment_id"])["status"] == "succeeded"


def test_a_failed_3ds_challenge_fails_the_payment_without_stars(stack: MoneyStack):
    user = stack.sign_in()
    response = buy(stack, user, {"package": "starter",
                                 "payment_method_id": "pm_card_threeDSecure2Required"})
    assert response.status_code == 201, response.text
    intent = response.json()["payment_intent_id"]

    stack.control.authenticate(intent, "fail")
    stack.control.wait_for_event("payment_intent.payment_failed", intent)

    row = row_of(stack, user, response.json()["payment_id"])
    assert (row["status"], row["error_code"]) == ("failed", "payment_intent_authentication_failure")
    assert stack.me(user)["star_balance"] == 0


def test_a_card_declined_after_its_challenge_fails_the_payment(stack: MoneyStack):
    user = stack.sign_in()
    response = buy(stack, user, {
        "package": "starter",
        "payment_method_id": "pm_card_authenticationRequiredChargeDeclinedInsufficientFunds"})
    assert response.json()["status"] == "requires_action"
    intent = response.json()["payment_intent_id"]

    stack.control.authenticate(intent, "complete")
    stack.control.wait_for_event("payment_intent.payment_failed", intent)

    row = row_of(stack, user, response.json()["payment_id"])
    assert (row["status"], row["error_code"]) == ("failed", "insufficient_funds")


def test_saving_a_card_that_asks_for_3ds_waits_for_the_challenge(stack: MoneyStack):
    user = stack.sign_in()
    for outcome, saved in (("fail", False), ("complete", True)):
        setup = stack.call("payment-methods", user, path="/setup", key=str(uuid.uuid4()))
        intent = stack.stripe.v1.setup_intents.confirm(
            setup.json()["setup_intent_id"], {"payment_method": "pm_card_threeDSecure2Required"})
        assert intent.status == "requires_action"
        stack.control.authenticate(intent.id, outcome)
        stack.control.wait_quiet()
        assert (stack.stripe.v1.setup_intents.retrieve(intent.id).status == "succeeded") is saved
    cards = stack.rest("GET", "user_payment_methods?select=last4", user).json()
    assert cards == [{"last4": "3220"}]


def test_a_decline_is_402_payment_failed_with_the_decline_code(stack: MoneyStack):
    user = stack.sign_in()
    response = buy(stack, user, {"package": "starter",
                                 "payment_method_id": "pm_card_chargeDeclinedInsufficientFunds"})
    assert response.status_code == 402, response.text
    error = response.json()["error"]
    assert (error["code"], error["details"]["decline_code"]) == (
        "payment_failed", "insufficient_funds")


def test_promptpay_shows_a_qr_code_and_the_stars_arrive_when_it_is_paid(stack: MoneyStack):
    user = stack.sign_in(email=True)
    key = str(uuid.uuid4())
    response = buy(stack, user, {"package": "basic", "payment_method_type": "promptpay"}, key)

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["payment_method_type"], body["next_action"]) == (
        "requires_action", "promptpay", {"type": "promptpay_display_qr_code",
                                         "redirect_url": None})
    code = body["promptpay"]
    assert code["qr_data"] and code["expires_at"] > 0
    page = stack.http.get(code["hosted_instructions_url"])
    png = stack.http.get(code["image_url_png"])
    assert (page.status_code, png.status_code) == (200, 200)
    assert "PromptPay" in page.text and png.content.startswith(b"\x89PNG")
    assert buy(stack, user, {"package": "basic", "payment_method_type": "promptpay"},
               key).json() == body  # the same QR code on a replay
    intent = stack.stripe.v1.payment_intents.retrieve(body["payment_intent_id"])
    assert intent.payment_method_types == ["promptpay"]
    stack.control.wait_for_event("payment_intent.requires_action", intent.id)
    assert row_of(stack, user, body["payment_id"])["status"] == "requires_action"

    stack.control.settle_promptpay(intent.id, "pay")
    stack.wait_for(lambda: stack.me(user)["star_balance"] == 17)
    assert row_of(stack, user, body["payment_id"])["status"] == "succeeded"


def test_an_expired_promptpay_code_fails_the_payment(stack: MoneyStack):
    user = stack.sign_in(email=True)
    body = buy(stack, user, {"package": "starter", "payment_method_type": "promptpay"}).json()

    stack.control.settle_promptpay(body["payment_intent_id"], "expire")
    stack.control.wait_for_event("payment_intent.payment_failed", body["payment_intent_id"])

    row = row_of(stack, user, body["payment_id"])
    assert (row["status"], row["error_code"]) == ("failed", "payment_intent_payment_attempt_expired")
    assert stack.me(user)["star_balance"] == 0


def test_promptpay_refuses_a_saved_card_and_an_account_without_email(stack: MoneyStack):
    with_card = buy(stack, stack.sign_in(email=True), {
        "package": "starter", "payment_method_type": "promptpay",
        "payment_method_id": "pm_card_visa"})
    no_email = buy(stack, stack.sign_in(), {"package": "starter",
                                            "payment_method_type": "promptpay"})
    unknown = buy(stack, stack.sign_in(), {"package": "starter",
                                           "payment_method_type": "truemoney"})
    for response in (with_card, no_email, unknown):
        assert (response.status_code, response.json()["error"]["code"]) == (
            422, "validation_error")
