"""Refunds and disputes over their whole life, against real PostgreSQL: stars leave when a refund
is created or a dispute opens, come back exactly once when the refund fails or is canceled or the
dispute is won, and a lost dispute keeps its hold as the claw-back."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.db.conftest import audit
from tests.money.conftest import (
    apply_event,
    begin_purchase,
    held_stars,
    make_user,
    paid,
    payment,
    record_intent,
    star_balance,
)
from tests.money.events import StripePayment, new_id

BASIC_AMOUNT, BASIC_STARS = 14900, 17


def ledger(db, payment_id):
    return [(r["type"], r["amount"], r["key"]) for r in db.execute(
        "select transaction_type::text as type, amount, dedupe_key as key"
        " from public.wallet_transactions where related_payment_id = %s order by seq",
        (payment_id,)).fetchall()]


def spend(db, user, stars: int) -> None:
    with db.transaction():
        db.execute("set local role service_role")
        db.execute("select private.apply_wallet_change(%s, 'STAR', %s, 'reading', %s)",
                   (user, -stars, f"test-spend:{uuid.uuid4()}"))


def test_a_refund_claws_back_when_created_and_credits_back_once_when_it_fails(db):
    user = make_user(db)
    p = paid(db, user)
    refund = new_id("re")

    created = apply_event(db, p.refund_event("refund.created", refund, BASIC_AMOUNT, "pending"))
    assert (created["result"], created["stars_clawed_back"]) == ("refund_pending", BASIC_STARS)
    assert star_balance(db, user) == 0
    assert payment(db, p.payment_id)["status"] == "refunded"

    failed = apply_event(db, p.refund_event("refund.failed", refund, BASIC_AMOUNT, "failed"))
    again = apply_event(db, p.refund_event("charge.refund.updated", refund, BASIC_AMOUNT,
                                           "failed"))
    late = apply_event(db, p.refund_event("refund.updated", refund, BASIC_AMOUNT, "succeeded"))

    assert (failed["result"], failed["stars_credited"]) == ("refund_failed", BASIC_STARS)
    assert (again["result"], late["result"]) == ("refund_already_applied",) * 2
    assert star_balance(db, user) == BASIC_STARS
    row = payment(db, p.payment_id)
    assert (row["status"], row["amount_refunded"], row["stars_clawed_back"]) == (
        "succeeded", 0, 0)
    assert ledger(db, p.payment_id) == [
        ("purchase", BASIC_STARS, f"purchase:{p.payment_id}"),
        ("refund", -BASIC_STARS, f"stripe-refund:{refund}"),
        ("refund_reversal", BASIC_STARS, f"stripe-refund-reversal:{refund}"),
    ]
    assert audit(db, [user]) == []


def test_a_promptpay_refund_waiting_for_bank_details_then_canceled_gives_the_stars_back(db):
    user = make_user(db)
    p = paid(db, user)
    refund = new_id("re")
    apply_event(db, p.refund_event("refund.created", refund, 5000, "requires_action"))
    assert star_balance(db, user) == BASIC_STARS - 5  # floor(17 * 5000 / 14900)
    assert payment(db, p.payment_id)["status"] == "partially_refunded"

    apply_event(db, p.refund_event("refund.updated", refund, 5000, "canceled"))
    apply_event(db, p.refund_event("refund.updated", refund, 5000, "pending"))  # stale

    assert star_balance(db, user) == BASIC_STARS
    assert payment(db, p.payment_id)["status"] == "succeeded"


def test_partial_refunds_stay_proportional_when_one_of_them_fails(db):
    user = make_user(db)
    p = paid(db, user)
    first, second = new_id("re"), new_id("re")
    apply_event(db, p.refund_event("refund.created", first, 5000, "pending"))
    apply_event(db, p.refund_event("refund.created", second, 5000, "pending"))
    assert star_balance(db, user) == BASIC_STARS - 11  # floor(17 * 10000 / 14900)

    apply_event(db, p.refund_event("refund.failed", first, 5000, "failed"))
    apply_event(db, p.refund_event("refund.updated", second, 5000, "succeeded"))

    assert star_balance(db, user) == BASIC_STARS - 5  # floor(17 * 5000 / 14900)
    row = payment(db, p.payment_id)
    assert (row["status"], row["amount_refunded"], row["stars_clawed_back"]) == (
        "partially_refunded", 5000, 5)


def test_a_failed_refund_forgives_the_shortfall_before_crediting_stars_never_taken(db):
    user = make_user(db)
    p = paid(db, user)
    spend(db, user, 12)  # 5 stars left
    refund = new_id("re")
    apply_event(db, p.refund_event("refund.created", refund, BASIC_AMOUNT, "pending"))
    assert star_balance(db, user) == 0
    assert payment(db, p.payment_id)["stars_shortfall"] == 12

    apply_event(db, p.refund_event("refund.failed", refund, BASIC_AMOUNT, "failed"))

    assert star_balance(db, user) == 5  # what the claw-back took, not the stars already spent
    row = payment(db, p.payment_id)
    assert (row["stars_clawed_back"], row["stars_shortfall"]) == (0, 0)
    assert audit(db, [user]) == []


def test_a_charge_refunded_total_ahead_of_its_refund_events_is_undone_when_the_refund_fails(db):
    user = make_user(db)
    p = paid(db, user)
    refund = new_id("re")
    assert apply_event(db, p.refunded(BASIC_AMOUNT))["result"] == "refunded"
    assert star_balance(db, user) == 0

    apply_event(db, p.refund_event("refund.created", refund, BASIC_AMOUNT, "pending"))
    apply_event(db, p.refund_event("refund.failed", refund, BASIC_AMOUNT, "failed"))
    apply_event(db, p.refunded(BASIC_AMOUNT))  # a stale report, new event id

    assert star_balance(db, user) == BASIC_STARS
    assert payment(db, p.payment_id)["status"] == "succeeded"


def test_an_open_dispute_holds_the_stars_so_they_cannot_be_spent_and_winning_releases_them(db):
    user = make_user(db)
    p = paid(db, user)
    dispute = new_id("dp")

    opened = apply_event(db, p.dispute_event("charge.dispute.created", dispute, BASIC_AMOUNT,
                                             "needs_response"))
    apply_event(db, p.dispute_event("charge.dispute.funds_withdrawn", dispute, BASIC_AMOUNT,
                                    "needs_response"))
    assert (opened["result"], opened["stars_clawed_back"]) == ("dispute_held", BASIC_STARS)
    assert (star_balance(db, user), held_stars(db, user)) == (0, BASIC_STARS)
    assert payment(db, p.payment_id)["status"] == "disputed"
    with pytest.raises(psycopg.Error) as refused:
        spend(db, user, 1)
    assert refused.value.sqlstate == "MV001"

    apply_event(db, p.dispute_event("charge.dispute.updated", dispute, BASIC_AMOUNT,
                                    "under_review"))
    won = apply_event(db, p.dispute_event("charge.dispute.closed", dispute, BASIC_AMOUNT, "won"))
    apply_event(db, p.dispute_event("charge.dispute.funds_reinstated", dispute, BASIC_AMOUNT,
                                    "won"))

    assert (won["result"], won["stars_credited"]) == ("dispute_won", BASIC_STARS)
    assert (star_balance(db, user), held_stars(db, user)) == (BASIC_STARS, 0)
    assert payment(db, p.payment_id)["status"] == "succeeded"
    assert ledger(db, p.payment_id)[1:] == [
        ("dispute", -BASIC_STARS, f"dispute-hold:{dispute}"),
        ("dispute_release", BASIC_STARS, f"dispute-release:{dispute}"),
    ]
    assert audit(db, [user]) == []


def test_a_lost_dispute_keeps_its_hold_as_the_claw_back_without_a_second_debit(db):
    user = make_user(db)
    p = paid(db, user)
    dispute = new_id("dp")
    apply_event(db, p.dispute_event("charge.dispute.created", dispute, BASIC_AMOUNT,
                                    "needs_response"))
    lost = apply_event(db, p.dispute_event("charge.dispute.closed", dispute, BASIC_AMOUNT, "lost"))
    apply_event(db, p.dispute_event("charge.dispute.updated", dispute, BASIC_AMOUNT,
                                    "under_review"))  # late

    assert (lost["result"], lost["stars_clawed_back"]) == ("dispute_lost", 0)
    assert (star_balance(db, user), held_stars(db, user)) == (0, 0)
    assert payment(db, p.payment_id)["status"] == "disputed"
    assert [t for t, _, _ in ledger(db, p.payment_id)] == ["purchase", "dispute"]


def test_a_hold_on_spent_stars_records_the_shortfall_and_a_win_forgives_it(db):
    user = make_user(db)
    p = paid(db, user)
    spend(db, user, 10)
    dispute = new_id("dp")
    apply_event(db, p.dispute_event("charge.dispute.created", dispute, BASIC_AMOUNT,
                                    "needs_response"))
    assert (star_balance(db, user), held_stars(db, user)) == (0, 7)
    assert payment(db, p.payment_id)["stars_shortfall"] == 10

    apply_event(db, p.dispute_event("charge.dispute.closed", dispute, BASIC_AMOUNT, "won"))
    assert (star_balance(db, user), held_stars(db, user)) == (7, 0)
    assert payment(db, p.payment_id)["stars_shortfall"] == 0


def test_an_inquiry_holds_nothing_until_it_becomes_a_chargeback(db):
    user = make_user(db)
    p = paid(db, user)
    dispute = new_id("dp")
    apply_event(db, p.dispute_event("charge.dispute.created", dispute, BASIC_AMOUNT,
                                    "warning_needs_response"))
    assert (star_balance(db, user), held_stars(db, user)) == (BASIC_STARS, 0)
    apply_event(db, p.dispute_event("charge.dispute.updated", dispute, BASIC_AMOUNT,
                                    "needs_response"))
    assert (star_balance(db, user), held_stars(db, user)) == (0, BASIC_STARS)


def test_requires_action_and_processing_move_a_payment_forward_never_back(db):
    user = make_user(db)
    row = begin_purchase(db, user, "basic")
    p = StripePayment(uuid.UUID(row["id"]), row["amount"])
    record_intent(db, p.payment_id, p.intent_id)
    assert apply_event(db, p.pending("processing"))["result"] == "processing"
    apply_event(db, p.pending("requires_action"))  # older news
    assert payment(db, p.payment_id)["status"] == "processing"
    apply_event(db, p.succeeded())
    apply_event(db, p.pending("requires_action"))
    assert payment(db, p.payment_id)["status"] == "succeeded"
    assert star_balance(db, user) == BASIC_STARS


def test_a_promptpay_purchase_needs_an_email_and_takes_no_saved_card(db):
    nameless = make_user(db)
    with_email = make_user(db, email=f"{uuid.uuid4().hex}@example.com")
    for user, method in ((nameless, None), (with_email, "pm_card_visa")):
        with pytest.raises(psycopg.Error) as refused, db.transaction():
            db.execute("set local role service_role")
            db.execute("select public.begin_purchase(%s, 'basic', %s, 'h', %s, 'promptpay')",
                       (user, str(uuid.uuid4()), method))
        assert refused.value.sqlstate == "MV006"
    with db.transaction():
        db.execute("set local role service_role")
        row = db.execute("select public.begin_purchase(%s, 'basic', %s, 'h', null, 'promptpay')"
                         " as p", (with_email, str(uuid.uuid4()))).fetchone()
    assert row is not None
    assert (row["p"]["payment_method_type"], row["p"]["email"]) == (
        "promptpay", db.execute("select email from public.users where id = %s",
                                (with_email,)).fetchone()["email"])
