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
    assert response.headers["content-language"] == "en"
    # A repeated call answers with the first erasure, in the language the app asks for.
    again = stack.call("account", user, method="DELETE", json={"confirm": "delete my account"},
                       headers={"Accept-Language": "th-TH, en;q=0.5"})
    assert again.status_code == 202 and again.json()["erased_at"] == body["erased_at"]
    assert again.headers["content-language"] == "th"
    assert "ดาวและเหรียญที่เหลือจะถูกริบ" in again.json()["message"]

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


def test_refund_and_dispute_events_after_the_deletion_are_acknowledged_and_credit_nobody(
        stack: MoneyStack):
    user = sign_in(stack)
    paid = buy(stack, user)
    intent = stack.stripe.v1.payment_intents.retrieve(paid["payment_intent_id"])
    refund = stack.stripe.v1.refunds.create(params={"payment_intent": intent.id, "amount": 7450})
    stack.control.wait_for_event("refund.created", refund.id)
    stack.wait_for(lambda: stack.me(user)["star_balance"] == 17 - 8)
    assert delete_account(stack, user).status_code == 202  # the other 9 stars are forfeited

    # The refund fails (its 8 stars would come back) and a dispute is opened and won.
    stack.control.move_refund(refund.id, "failed")
    dispute = stack.control.open_dispute(str(intent.latest_charge), amount=5000)
    stack.control.close_dispute(dispute["id"], "won")
    stack.control.wait_for_event("charge.dispute.funds_reinstated", dispute["id"])
    assert stack.control.wait_quiet(timeout=20)
    late = [e for e in stack.control.events()
            if e["object_id"] in (refund.id, dispute["id"]) and e["type"] != "refund.created"]
    assert {e["type"] for e in late} >= {"refund.failed", "charge.dispute.funds_withdrawn",
                                         "charge.dispute.closed"}
    for event in late:  # acknowledged at once, not retried
        assert event["delivered"] and [a["status"] for a in event["attempts"]] == [200], event

    with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as conn:
        assert conn.execute("select count(*) as n from public.stripe_events where id = any(%s)",
                            ([e["id"] for e in late],)).fetchone() == {"n": len(late)}
        assert conn.execute(
            "select star_balance, coin_balance from public.users where id = %s",
            (user.id,)).fetchone() == {"star_balance": 0, "coin_balance": 0}
        # Nothing credited to anyone since the deletion's forfeit.
        after = conn.execute(
            "select w.user_id::text, w.amount, w.transaction_type::text as type"
            " from public.wallet_transactions w where w.seq > (select max(f.seq)"
            "  from public.wallet_transactions f where f.user_id = %s"
            "  and f.transaction_type = 'forfeit')"
            " and (w.user_id = %s or w.related_payment_id = %s)",
            (user.id, user.id, paid["payment_id"])).fetchall()
        assert after == []
        assert conn.execute(
            "select r.status as refund, d.status as dispute from public.payment_refunds r"
            " join public.payment_disputes d using (payment_id) where r.payment_id = %s",
            (paid["payment_id"],)).fetchone() == {"refund": "failed", "dispute": "won"}
        assert conn.execute("select * from public.wallet_audit()").fetchall() == []
