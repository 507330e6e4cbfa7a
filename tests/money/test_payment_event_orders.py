"""Property: whatever order and repetition a payment's events arrive in (success, refunds that
succeed, fail or are canceled, a dispute won, lost or still open), it ends with one status, the
expected net stars, the expected held stars (none once no dispute is open), and a healthy
ledger."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.db.conftest import acting_as, audit
from tests.money.conftest import (
    apply_event,
    begin_purchase,
    make_user,
    payment,
    record_intent,
    star_balance,
)
from tests.money.events import StripePayment, event, new_id

PACKAGES = {"starter": (4900, 5), "basic": (14900, 17), "premium": (29900, 36)}


@dataclass(frozen=True)
class Refund:
    amount: int
    first: str  # pending, or requires_action for a PromptPay refund waiting for bank details
    fate: str  # succeeded, failed or canceled


@dataclass(frozen=True)
class Life:
    package: str
    refunds: tuple[Refund, ...]
    report_total: bool  # a charge.refunded carrying only the total refunded
    dispute: str | None  # won, lost, or open (funds withdrawn, no verdict yet)


@st.composite
def lives(draw: Any) -> Life:
    package = draw(st.sampled_from(sorted(PACKAGES)))
    amount = PACKAGES[package][0]
    refunds: list[Refund] = []
    left = amount
    for _ in range(draw(st.integers(0, 3))):
        if left < 100:
            break
        cut = draw(st.integers(100, left))
        left -= cut
        refunds.append(Refund(cut, draw(st.sampled_from(["pending", "requires_action"])),
                              draw(st.sampled_from(["succeeded", "failed", "canceled"]))))
    dispute = draw(st.sampled_from([None, "won", "lost", "open"])) if left > 0 else None
    return Life(package, tuple(refunds), bool(refunds) and draw(st.booleans()), dispute)


def events_of(p: StripePayment, life: Life) -> list[dict[str, Any]]:
    """The events Stripe sends over this life, in the order it sends them."""
    sent = [p.succeeded()]
    for refund in life.refunds:
        refund_id = new_id("re")
        sent.append(p.refund_event("refund.created", refund_id, refund.amount, refund.first))
        final = "refund.failed" if refund.fate == "failed" else "refund.updated"
        sent.append(p.refund_event(final, refund_id, refund.amount, refund.fate))
        sent.append(p.refund_event("charge.refund.updated", refund_id, refund.amount,
                                   refund.fate))
    if life.report_total:
        sent.append(p.refunded(sum(r.amount for r in life.refunds)))
    if life.dispute is not None:
        dispute_id = new_id("dp")
        disputed = p.amount - sum(r.amount for r in life.refunds)
        sent.append(p.dispute_event("charge.dispute.created", dispute_id, disputed,
                                    "needs_response"))
        sent.append(p.dispute_event("charge.dispute.funds_withdrawn", dispute_id, disputed,
                                    "needs_response"))
        if life.dispute != "open":
            sent.append(p.dispute_event("charge.dispute.closed", dispute_id, disputed,
                                        life.dispute))
        if life.dispute == "won":
            sent.append(p.dispute_event("charge.dispute.funds_reinstated", dispute_id, disputed,
                                        "won"))
    return sent


def expected(life: Life) -> tuple[str, int, int]:
    """(status, star balance, held stars) once every event has arrived."""
    amount, stars = PACKAGES[life.package]
    refunded = sum(r.amount for r in life.refunds if r.fate == "succeeded")
    disputed = amount - sum(r.amount for r in life.refunds) \
        if life.dispute in ("lost", "open") else 0
    net = stars - stars * min(amount, refunded + disputed) // amount
    held = stars * min(amount, refunded + disputed) // amount - stars * refunded // amount \
        if life.dispute == "open" else 0
    if disputed:
        return "disputed", net, held
    if refunded >= amount:
        return "refunded", net, held
    return ("partially_refunded" if refunded else "succeeded"), net, held


@settings(max_examples=30, deadline=5000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(life=lives(), data=st.data())
def test_every_order_and_repetition_of_a_payments_events_converges(db, life, data):
    user = make_user(db)
    row = begin_purchase(db, user, life.package)
    p = StripePayment(uuid.UUID(row["id"]), row["amount"])
    record_intent(db, p.payment_id, p.intent_id)  # the purchase function's answer
    sent = events_of(p, life)
    order = data.draw(st.permutations(sent), label="order")
    # Stripe re-delivers an event (same id) and may report the same object again (new id).
    again = data.draw(st.lists(st.sampled_from(sent), max_size=6), label="again")
    news = [event(e["type"], e["data"]["object"]) for e in data.draw(
        st.lists(st.sampled_from(sent), max_size=4), label="reported again")]
    for delivered in [*order, *again, *news]:
        apply_event(db, delivered)

    with acting_as(db, "authenticated", user) as conn:
        summary = conn.execute("select public.wallet_summary() as s").fetchone()
    assert summary is not None
    assert (payment(db, p.payment_id)["status"], star_balance(db, user),
            summary["s"]["held_stars"]) == expected(life)
    assert audit(db, [user]) == []
