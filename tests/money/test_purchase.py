"""POST /purchase and /payment-methods through the function URLs, with the Stripe stand-in
delivering signed webhooks to the real stripe-webhook handler."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg

from tests.money.stack import RATE_LIMIT, MoneyStack, User

PURCHASE_FIELDS = {"payment_id", "payment_intent_id", "client_secret", "status", "amount",
                   "currency", "stars_purchased", "stars_bonus", "stars_total",
                   "payment_method_type", "customer_id", "customer_session_client_secret",
                   "next_action", "promptpay"}


def payment_rows(stack: MoneyStack, user: User) -> list[dict]:
    rows = stack.rest("GET", "payments?select=*&order=created_at", user)
    assert rows.status_code == 200, rows.text
    return list(rows.json())


def save_card(stack: MoneyStack, user: User, test_card: str) -> dict:
    """The app's side of saving a card: SetupIntent from us, confirmation with Stripe."""
    setup = stack.call("payment-methods", user, path="/setup", key=str(uuid.uuid4()))
    assert setup.status_code == 201, setup.text
    intent = stack.stripe.v1.setup_intents.confirm(setup.json()["setup_intent_id"],
                                                   {"payment_method": test_card})
    if intent.status == "requires_action":  # a card that asks for 3-D Secure when saved
        stack.control.authenticate(intent.id, "complete")
        intent = stack.stripe.v1.setup_intents.retrieve(intent.id)
    assert intent.status == "succeeded"
    return stack.wait_for(lambda: next(iter(
        stack.rest("GET", f"user_payment_methods?stripe_payment_method_id=eq.{intent.payment_method}",
                   user).json()), None))


def test_sign_in_purchase_confirm_and_the_stars_arrive(stack: MoneyStack):
    user = stack.sign_in()
    response = stack.call("purchase", user, key=str(uuid.uuid4()), json={"package": "basic"})

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) >= PURCHASE_FIELDS
    assert (body["amount"], body["currency"], body["status"]) == (
        14900, "THB", "requires_payment_method")  # for the app's PaymentSheet
    assert body["customer_session_client_secret"].startswith("cuss_secret_")
    assert (body["payment_method_type"], body["next_action"], body["promptpay"]) == (
        "card", None, None)
    assert (body["stars_purchased"], body["stars_bonus"], body["stars_total"]) == (15, 2, 17)
    assert body["client_secret"].startswith(body["payment_intent_id"] + "_secret_")
    assert stack.me(user)["star_balance"] == 0
    # At Stripe: THB, the database's price, the user's Customer, our payment in the metadata.
    intent = stack.stripe.v1.payment_intents.retrieve(body["payment_intent_id"])
    [customer] = stack.rest("GET", "stripe_customers?select=stripe_customer_id", user).json()
    assert (intent.amount, intent.currency, intent.customer) == (
        14900, "thb", customer["stripe_customer_id"])
    assert intent.metadata["payment_id"] == body["payment_id"]

    # The app confirms with Stripe; Stripe tells us through the webhook.
    stack.stripe.v1.payment_intents.confirm(body["payment_intent_id"],
                                            {"payment_method": "pm_card_visa"})
    stack.wait_for(lambda: stack.me(user)["star_balance"] == 17)
    summary = stack.rest("POST", "rpc/wallet_summary", user, json={})
    assert summary.status_code == 200, summary.text
    assert (summary.json()["star_balance"], summary.json()["coin_balance"]) == (17, 0)
    [row] = payment_rows(stack, user)
    assert (row["status"], row["stripe_payment_intent_id"]) == (
        "succeeded", body["payment_intent_id"])


def test_a_retried_purchase_makes_one_payment_intent_and_one_payment(stack: MoneyStack):
    user = stack.sign_in()
    key = str(uuid.uuid4())
    first = stack.call("purchase", user, key=key, json={"package": "starter"})
    second = stack.call("purchase", user, key=key, json={"package": "starter"})

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json() == second.json()
    assert len(payment_rows(stack, user)) == 1
    customer = stack.rest("GET", "stripe_customers?select=stripe_customer_id", user).json()
    intents = stack.stripe.v1.payment_intents.list(
        {"customer": customer[0]["stripe_customer_id"]})
    assert [pi.id for pi in intents.data] == [first.json()["payment_intent_id"]]

    other = stack.call("purchase", user, key=key, json={"package": "premium"})
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    # Stripe saw one key per effect, each derived from the user (and the client's key).
    with stack.standin.state.lock:
        keys = [k for k in stack.standin.state.idempotency if user.id in k]
    assert sorted(k.split(":")[1] for k in keys) == ["customer", "customer-session", "purchase"]
    assert all(k.startswith(f"mimivibe:{k.split(':')[1]}:{user.id}") for k in keys)
    assert key not in "".join(keys)  # the client's key is hashed, never sent as it is


def test_concurrent_first_purchases_share_one_stripe_customer(stack: MoneyStack):
    user = stack.sign_in()

    def buy(_: int) -> int:
        return stack.call("purchase", user, key=str(uuid.uuid4()),
                          json={"package": "starter"}).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(buy, range(4))) == [201] * 4
    customers = stack.rest("GET", "stripe_customers?select=stripe_customer_id", user).json()
    with stack.standin.state.lock:
        at_stripe = [c["id"] for c in stack.standin.state.collections["customers"].values()
                     if c["metadata"].get("user_id") == user.id]
    assert [c["stripe_customer_id"] for c in customers] == at_stripe
    assert len(at_stripe) == 1
    intents = stack.stripe.v1.payment_intents.list({"customer": at_stripe[0]})
    assert len(intents.data) == 4


def test_purchase_refuses_bad_requests(stack: MoneyStack):
    user = stack.sign_in()
    unknown = stack.call("purchase", user, json={"package": "mega"})
    extra = stack.call("purchase", user, json={"package": "basic", "amount": 1})
    anonymous = stack.call("purchase", json={"package": "basic"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (422, "validation_error")
    assert extra.status_code == 422
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthorized")
    assert payment_rows(stack, user) == []


def test_a_declined_saved_card_is_402_and_gives_no_stars(stack: MoneyStack):
    user = stack.sign_in()
    card = save_card(stack, user, "pm_card_chargeCustomerFail")
    key = str(uuid.uuid4())
    body = {"package": "premium", "payment_method_id": card["id"]}

    declined = stack.call("purchase", user, key=key, json=body)
    replayed = stack.call("purchase", user, key=key, json=body)

    for response in (declined, replayed):
        assert response.status_code == 402, response.text
        assert response.json()["error"]["code"] == "payment_failed"
    stack.control.wait_quiet()
    [row] = payment_rows(stack, user)
    assert (row["status"], row["error_code"]) == ("failed", "generic_decline")
    assert stack.me(user)["star_balance"] == 0


def test_a_saved_card_pays_at_once_and_can_be_removed(stack: MoneyStack):
    user, stranger = stack.sign_in(), stack.sign_in()
    card = save_card(stack, user, "pm_card_mastercard")
    assert (card["brand"], card["last4"], card["is_default"]) == ("mastercard", "4444", True)

    paid = stack.call("purchase", user, key=str(uuid.uuid4()),
                      json={"package": "starter", "payment_method_id": card["id"]})
    assert paid.status_code == 201, paid.text
    stack.wait_for(lambda: stack.me(user)["star_balance"] == 5)

    for who, path in ((stranger, f"/{card['id']}"), (user, f"/{uuid.uuid4()}"),
                      (user, "/pm_nobody_has_this")):
        missing = stack.call("payment-methods", who, method="DELETE", path=path)
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    removed = stack.call("payment-methods", user, method="DELETE", path=f"/{card['id']}")
    assert removed.status_code == 204, removed.text
    detached = stack.stripe.v1.payment_methods.retrieve(card["stripe_payment_method_id"])
    assert detached.customer is None
    stack.control.wait_quiet()
    [row] = stack.rest("GET", f"user_payment_methods?id=eq.{card['id']}", user).json()
    assert (row["is_active"], row["is_default"]) == (False, False)
    reuse = stack.call("purchase", user, json={"package": "starter",
                                               "payment_method_id": card["id"]})
    assert (reuse.status_code, reuse.json()["error"]["code"]) == (422, "validation_error")
    assert len(payment_rows(stack, user)) == 1


def test_a_card_that_is_not_the_callers_is_422_and_leaves_no_payment(stack: MoneyStack):
    owner, caller = stack.sign_in(), stack.sign_in()
    card = save_card(stack, owner, "pm_card_visa")
    for given in (card["id"], card["stripe_payment_method_id"], str(uuid.uuid4()), "card-1",
                  "pm_\u0000", "", "pm_" + "x" * 253):
        response = stack.call("purchase", caller, key=str(uuid.uuid4()),
                              json={"package": "starter", "payment_method_id": given})
        assert response.status_code == 422, (given, response.text)
        assert response.json()["error"]["code"] == "validation_error"
    assert payment_rows(stack, caller) == []


def test_a_replay_pays_with_the_card_resolved_by_the_first_call(stack: MoneyStack):
    user = stack.sign_in()
    card = save_card(stack, user, "pm_card_visa")
    key = str(uuid.uuid4())
    body = {"package": "starter", "payment_method_id": card["id"]}
    first = stack.call("purchase", user, key=key, json=body)
    assert first.status_code == 201, first.text
    assert stack.call("payment-methods", user, method="DELETE",
                      path=f"/{card['id']}").status_code == 204

    replayed = stack.call("purchase", user, key=key, json=body)

    assert replayed.status_code == 201, replayed.text
    assert {k: replayed.json()[k] for k in ("payment_id", "payment_intent_id", "client_secret")} \
        == {k: first.json()[k] for k in ("payment_id", "payment_intent_id", "client_secret")}
    [row] = payment_rows(stack, user)
    assert row["stripe_payment_method_id"] == card["stripe_payment_method_id"]


def test_a_refund_and_a_lost_dispute_take_the_stars_back(stack: MoneyStack):
    user = stack.sign_in()
    refunded = stack.call("purchase", user, key=str(uuid.uuid4()),
                          json={"package": "basic", "payment_method_id": "pm_card_visa"}).json()
    disputed = stack.call("purchase", user, key=str(uuid.uuid4()),
                          json={"package": "starter", "payment_method_id": "pm_card_visa"}).json()
    stack.wait_for(lambda: stack.me(user)["star_balance"] == 22)

    stack.stripe.v1.refunds.create({"payment_intent": refunded["payment_intent_id"],
                                    "amount": 7450})
    stack.wait_for(lambda: stack.me(user)["star_balance"] == 22 - 8)
    charge = stack.stripe.v1.payment_intents.retrieve(disputed["payment_intent_id"]).latest_charge
    dispute = stack.control.open_dispute(str(charge))
    stack.control.close_dispute(dispute["id"], "lost")
    stack.wait_for(lambda: stack.me(user)["star_balance"] == 22 - 8 - 5)
    statuses = {r["id"]: r["status"] for r in payment_rows(stack, user)}
    assert statuses == {refunded["payment_id"]: "partially_refunded",
                        disputed["payment_id"]: "disputed"}


def test_purchases_are_rate_limited_per_user(stack: MoneyStack):
    user = stack.sign_in()
    statuses = [stack.call("purchase", user, json={"package": "starter"}).status_code
                for _ in range(RATE_LIMIT + 1)]
    assert statuses == [201] * RATE_LIMIT + [429]


def test_the_ledger_stays_consistent(stack: MoneyStack):
    with psycopg.connect(stack.database_url) as conn:
        assert conn.execute("select * from public.wallet_audit()").fetchall() == []


def test_a_replayed_setup_returns_the_first_setup_intent(stack: MoneyStack):
    user = stack.sign_in()
    key = str(uuid.uuid4())
    first = stack.call("payment-methods", user, path="/setup", key=key)
    with stack.standin.state.lock:
        # As after Stripe's 24-hour idempotency window: only our record can replay now.
        stack.standin.state.idempotency.clear()
    again = stack.call("payment-methods", user, path="/setup", key=key)
    other = stack.call("payment-methods", user, path="/setup", key=str(uuid.uuid4()))

    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 201)
    assert again.json() == first.json()
    assert other.json()["setup_intent_id"] != first.json()["setup_intent_id"]
    customer = stack.rest("GET", "stripe_customers?select=stripe_customer_id", user).json()
    intents = stack.stripe.v1.setup_intents.list({"customer": customer[0]["stripe_customer_id"]})
    assert sorted(i.id for i in intents.data) == sorted(
        [first.json()["setup_intent_id"], other.json()["setup_intent_id"]])
    extra = stack.call("payment-methods", user, path="/setup", key=key, json={"usage": "x"})
    assert (extra.status_code, extra.json()["error"]["code"]) == (422, "validation_error")
