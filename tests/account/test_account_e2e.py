"""GET /account/export and DELETE /account end to end: through the function URLs, with the
Stripe stand-in delivering signed webhooks to the real stripe-webhook handler."""

from __future__ import annotations

import psycopg
import stripe
from psycopg.rows import dict_row

from tests.account.app import ask, buy, delete_account, save_card, session, sign_in
from tests.account.conftest import occurrences
from tests.money.stack import MoneyStack


def test_export_returns_everything_stored_about_the_caller(stack: MoneyStack):
    user, other = sign_in(stack), sign_in(stack)
    buy(stack, user)
    buy(stack, other)
    save_card(stack, user)
    assert ask(stack, user, "Will my garden grow?").status_code == 202

    response = stack.call("account", user, method="GET", path="/export")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    document = response.json()
    assert document["profile"]["id"] == user.id and document["profile"]["email"] == user.email
    assert [i["external_id"] for i in document["identities"]] == [user.subject]
    assert len(document["payments"]) == 1 and document["payments"][0]["status"] == "succeeded"
    assert {r["transaction_type"] for r in document["ledger"]} == {"purchase", "reading"}
    assert document["jobs"][0]["payload"]["question"] == "Will my garden grow?"
    assert [(c["brand"], c["last4"]) for c in document["saved_cards"]] == [("visa", "4242")]
    assert other.id not in response.text and other.email not in response.text


def test_delete_needs_the_confirmation(stack: MoneyStack):
    user = sign_in(stack)
    for body in ({}, {"confirm": "yes"}, {"confirm": "delete my account", "extra": 1}):
        response = delete_account(stack, user, body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "validation_error"
    empty = stack.call("account", user, method="DELETE")
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "validation_error"
    assert stack.call("account", user, method="GET", path="/export").status_code == 200


def test_delete_erases_the_account_and_keeps_the_financial_records(stack: MoneyStack):
    user = sign_in(stack)
    paid = buy(stack, user)
    card = save_card(stack, user)
    pending = buy(stack, user, "starter", confirm=False)
    assert ask(stack, user, "Is my secretquestionword lucky?").status_code == 202
    customer = stack.rest("GET", "stripe_customers?select=stripe_customer_id", user).json()[0][
        "stripe_customer_id"]

    response = delete_account(stack, user)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["deleted"] is True and "forfeited" in body["message"]
    again = delete_account(stack, user)
    assert again.status_code == 202 and again.json()["erased_at"] == body["erased_at"]

    # The old access token is refused everywhere.
    for call in (stack.call("account", user, method="GET", path="/export"),
                 stack.call("purchase", user, json={"package": "starter"}),
                 ask(stack, user, "again?")):
        assert call.status_code == 401, call.text
        assert call.json()["error"]["code"] == "unauthorized"
    # Nothing personal is left anywhere (before the same person signs up again below).
    with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as conn:
        for marker in (user.email, user.name, user.subject, "secretquestionword"):
            assert occurrences(conn, marker) == [], marker
    # The provider token signs in as a new, empty account.
    fresh = session(stack, user.provider_token)
    assert fresh["user"]["id"] != user.id and fresh["user"]["star_balance"] == 0
    assert fresh["user"]["email"] == user.email

    # At Stripe: the card detached and the Customer deleted.
    assert stack.stripe.v1.customers.retrieve(customer).to_dict().get("deleted") is True
    assert stack.stripe.v1.payment_methods.retrieve(card).customer is None

    # A late success of a payment started before the deletion: acknowledged, nobody credited.
    stack.stripe.v1.payment_intents.confirm(pending["payment_intent_id"],
                                            {"payment_method": "pm_card_visa"})
    with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as conn:
        stack.wait_for(lambda: conn.execute(
            "select status from public.payments where id = %s and status = 'succeeded'",
            (pending["payment_id"],)).fetchone())
        assert conn.execute("select star_balance, erased_at is not null as erased"
                            " from public.users where id = %s", (user.id,)).fetchone() == {
            "star_balance": 0, "erased": True}
        kept = conn.execute("select amount, status from public.payments where id = %s",
                            (paid["payment_id"],)).fetchone()
        assert kept == {"amount": 14900, "status": "succeeded"}
        assert conn.execute("select * from public.wallet_audit()").fetchall() == []
        assert conn.execute("select cleanup_done_at is not null as done from"
                            " private.account_erasures where user_id = %s",
                            (user.id,)).fetchone() == {"done": True}


def test_a_customer_already_deleted_at_stripe_counts_as_cleaned(stack: MoneyStack):
    user = sign_in(stack)
    buy(stack, user, "starter")
    customer = stack.rest("GET", "stripe_customers?select=stripe_customer_id", user).json()[0][
        "stripe_customer_id"]
    stack.stripe.v1.customers.delete(customer)
    assert delete_account(stack, user).status_code == 202
    try:
        stack.stripe.v1.customers.delete(customer)
        raise AssertionError("the Customer should be gone")
    except stripe.InvalidRequestError as exc:
        assert exc.code == "resource_missing"
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        assert conn.execute("select cleanup_done_at is not null from private.account_erasures"
                            " where user_id = %s", (user.id,)).fetchone() == (True,)
