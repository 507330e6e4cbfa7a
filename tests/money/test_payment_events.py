"""The payment state machine of public.apply_stripe_event, against real PostgreSQL: exactly once,
monotonic, order-independent, refunds and disputes clawed back in proportion."""

from __future__ import annotations

import itertools
import uuid

import psycopg
import pytest

from tests.money.conftest import (
    apply_event,
    begin_purchase,
    credit,
    make_user,
    payment,
    record_intent,
    star_balance,
)
from tests.money.events import StripePayment

BASIC_AMOUNT, BASIC_STARS = 14900, 17


def new_payment(db, user_id, package="basic", *, recorded=True):
    """A pending payment; `recorded`: the purchase function has stored its PaymentIntent id."""
    row = begin_purchase(db, user_id, package)
    p = StripePayment(uuid.UUID(row["id"]), row["amount"])
    if recorded:
        record_intent(db, p.payment_id, p.intent_id)
    return p


def ledger(db, payment_id):
    return db.execute(
        "select transaction_type::text as type, amount, dedupe_key, metadata"
        " from public.wallet_transactions where related_payment_id = %s order by seq",
        (payment_id,),
    ).fetchall()


def test_success_credits_the_package_stars_once(db):
    user = make_user(db)
    p = new_payment(db, user, recorded=False)  # the webhook overtook the purchase function
    event = p.succeeded()

    first = apply_event(db, event)
    second = apply_event(db, event)

    assert first == {"duplicate": False, "result": "settled",
                     "stars_credited": BASIC_STARS, "stars_clawed_back": 0}
    assert second == {"duplicate": True, "result": "duplicate"}
    assert star_balance(db, user) == BASIC_STARS
    row = payment(db, p.payment_id)
    assert row["status"] == "succeeded"
    assert row["stripe_payment_intent_id"] == p.intent_id
    assert row["stripe_charge_id"] == p.charge_id
    assert [(r["type"], r["amount"], r["dedupe_key"]) for r in ledger(db, p.payment_id)] == [
        ("purchase", BASIC_STARS, f"purchase:{p.payment_id}")]


def test_a_second_event_reporting_the_same_success_credits_nothing(db):
    user = make_user(db)
    p = new_payment(db, user)
    apply_event(db, p.succeeded())
    assert apply_event(db, p.succeeded())["duplicate"] is False
    assert star_balance(db, user) == BASIC_STARS


def test_a_late_failure_never_undoes_a_success(db):
    user = make_user(db)
    p = new_payment(db, user)
    apply_event(db, p.succeeded())
    assert apply_event(db, p.failed())["result"] == "ignored_after_success"
    assert payment(db, p.payment_id)["status"] == "succeeded"
    assert star_balance(db, user) == BASIC_STARS


def test_a_canceled_payment_stays_canceled_and_a_cancel_never_undoes_a_success(db):
    user = make_user(db)
    abandoned, paid = new_payment(db, user), new_payment(db, user)
    assert apply_event(db, abandoned.canceled())["result"] == "canceled"
    apply_event(db, abandoned.failed())  # a late failure report of the same PaymentIntent
    apply_event(db, paid.succeeded())
    assert apply_event(db, paid.canceled())["result"] == "ignored_after_success"

    assert payment(db, abandoned.payment_id)["status"] == "canceled"
    assert payment(db, paid.payment_id)["status"] == "succeeded"
    assert star_balance(db, user) == BASIC_STARS


def test_a_failure_then_a_success_ends_succeeded_without_the_error(db):
    user = make_user(db)
    p = new_payment(db, user)
    apply_event(db, p.failed())
    failed = payment(db, p.payment_id)
    assert (failed["status"], failed["error_code"]) == ("failed", "insufficient_funds")
    apply_event(db, p.succeeded())
    row = payment(db, p.payment_id)
    assert (row["status"], row["error_code"], row["error_message"]) == ("succeeded", None, None)
    assert star_balance(db, user) == BASIC_STARS


def test_partial_refunds_claw_back_in_proportion_exactly_once(db):
    user = make_user(db)
    p = new_payment(db, user)
    apply_event(db, p.succeeded())
    first_refund = p.refunded(5000)  # a third of the price: floor(17 * 5000 / 14900) = 5 stars
    reported = apply_event(db, first_refund)
    assert (reported["stars_credited"], reported["stars_clawed_back"]) == (0, 5)
    assert star_balance(db, user) == BASIC_STARS - 5
    assert payment(db, p.payment_id)["status"] == "partially_refunded"

    apply_event(db, p.refunded(BASIC_AMOUNT))  # the rest: cumulative target is every star
    apply_event(db, p.refunded(5000))  # a stale report of the first refund, new event id

    row = payment(db, p.payment_id)
    assert (row["status"], row["amount_refunded"], row["stars_clawed_back"]) == (
        "refunded", BASIC_AMOUNT, BASIC_STARS)
    assert star_balance(db, user) == 0
    assert [(r["type"], r["amount"]) for r in ledger(db, p.payment_id)] == [
        ("purchase", BASIC_STARS), ("refund", -5), ("refund", -12)]


def test_a_refund_before_the_success_ends_refunded_with_no_net_stars(db):
    user = make_user(db, stars=3)
    p = new_payment(db, user)
    apply_event(db, p.refunded(BASIC_AMOUNT))
    apply_event(db, p.succeeded())
    apply_event(db, p.failed())
    row = payment(db, p.payment_id)
    assert row["status"] == "refunded"
    assert star_balance(db, user) == 3
    assert sum(r["amount"] for r in ledger(db, p.payment_id)) == 0


def test_a_claw_back_stops_at_zero_and_records_the_shortfall(db):
    user = make_user(db)
    p = new_payment(db, user)
    apply_event(db, p.succeeded())
    db.execute("select private.apply_wallet_change(%s, 'STAR', -15, 'reading', %s)",
               (user, f"reading:{uuid.uuid4()}"))
    apply_event(db, p.refunded(BASIC_AMOUNT))

    assert star_balance(db, user) == 0
    claw_back = ledger(db, p.payment_id)[-1]
    assert claw_back["amount"] == -2
    assert claw_back["metadata"]["requested"] == -BASIC_STARS
    assert claw_back["metadata"]["shortfall"] == 15
    row = payment(db, p.payment_id)
    assert (row["stars_clawed_back"], row["stars_shortfall"]) == (BASIC_STARS, 15)
    assert db.execute("select * from public.wallet_audit()").fetchall() == []


def test_a_lost_dispute_claws_back_and_a_won_one_does_not(db):
    user = make_user(db)
    lost, won = new_payment(db, user), new_payment(db, user)
    for p in (lost, won):
        apply_event(db, p.succeeded())
    assert apply_event(db, won.dispute_closed(BASIC_AMOUNT, "won"))["result"] == "dispute_won"
    closed = lost.dispute_closed(BASIC_AMOUNT)
    assert apply_event(db, closed)["result"] == "dispute_lost"
    assert apply_event(db, closed)["duplicate"] is True
    assert star_balance(db, user) == BASIC_STARS
    row = payment(db, lost.payment_id)
    assert (row["status"], row["disputed"], row["amount_disputed"]) == (
        "disputed", True, BASIC_AMOUNT)
    assert payment(db, won.payment_id)["status"] == "succeeded"


def test_every_ordering_of_a_payments_events_ends_in_the_same_state(db):
    outcomes = set()
    for order in itertools.permutations(range(4)):
        user = make_user(db, stars=10)
        p = new_payment(db, user)
        events = [p.succeeded(), p.failed(), p.refunded(BASIC_AMOUNT // 2),
                  p.dispute_closed(BASIC_AMOUNT - BASIC_AMOUNT // 2)]
        for index in order:
            apply_event(db, events[index])
        row = payment(db, p.payment_id)
        outcomes.add((row["status"], row["amount_refunded"], row["amount_disputed"],
                      row["stars_clawed_back"], row["stars_shortfall"], row["error_code"],
                      star_balance(db, user)))
    assert outcomes == {("disputed", 7450, 7450, BASIC_STARS, 0, None, 10)}
    assert db.execute("select * from public.wallet_audit()").fetchall() == []


def test_events_about_unknown_payments_are_recorded_and_change_nothing(db):
    stranger = StripePayment(uuid.uuid4(), 4900)
    for event in (stranger.succeeded(), stranger.dispute_closed(4900)):
        assert apply_event(db, event)["result"] == "unknown_payment"
        assert apply_event(db, event)["duplicate"] is True


def test_an_unhandled_event_type_is_refused_and_never_recorded_as_processed(db):
    p = StripePayment(uuid.uuid4(), 4900)
    event = p.succeeded() | {"type": "customer.created"}
    with pytest.raises(psycopg.Error) as refused:
        apply_event(db, event)
    assert refused.value.sqlstate == "MV007"
    assert db.execute("select count(*) as n from public.stripe_events where id = %s",
                      (event["id"],)).fetchone()["n"] == 0


def test_the_webhook_forwards_exactly_the_types_the_sql_handles(db):
    from shared.stripe_webhooks import HANDLED_TYPES

    row = db.execute("select public.stripe_event_types() as types").fetchone()
    assert set(row["types"]) == HANDLED_TYPES


def test_only_the_service_role_may_apply_events(db):
    for role in ("anon", "authenticated"):
        allowed = db.execute(
            "select has_function_privilege(%s,"
            " 'public.apply_stripe_event(text, text, jsonb, jsonb)', 'execute') as ok",
            (role,)).fetchone()
        assert allowed["ok"] is False


def test_a_payment_is_priced_by_the_database_and_replayed_by_key(db):
    user = make_user(db)
    key = str(uuid.uuid4())
    first = begin_purchase(db, user, "premium", key)
    again = begin_purchase(db, user, "premium", key)
    assert (first["amount"], first["stars_total"], first["replayed"]) == (29900, 36, False)
    assert (again["id"], again["replayed"]) == (first["id"], True)


def test_a_declined_confirmation_marks_a_pending_payment_failed(db):
    user = make_user(db)
    p = new_payment(db, user, recorded=False)
    row = record_intent(db, p.payment_id, p.intent_id, declined=True)
    assert (row["status"], row["error_code"]) == ("failed", "card_declined")
    apply_event(db, p.succeeded())  # the customer's bank approved a later attempt
    assert payment(db, p.payment_id)["status"] == "succeeded"


def test_a_payment_intent_id_is_recorded_once(db):
    user = make_user(db)
    p = new_payment(db, user)
    with pytest.raises(psycopg.DatabaseError) as caught:
        record_intent(db, p.payment_id, "pi_other")
    assert caught.value.sqlstate == "MV006"
    credit(db, user, "STAR", 4)
    assert star_balance(db, user) == 4
