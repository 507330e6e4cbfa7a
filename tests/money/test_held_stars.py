"""Held stars of a user with many payments in every dispute state: wallet_summary reads only the
payments that took stars back (an index), and its figure is the one the full formula gives over
every payment of the user."""

from __future__ import annotations

from tests.db.conftest import audit
from tests.money.conftest import (
    apply_event,
    held_stars,
    make_user,
    paid,
    star_balance,
)
from tests.money.events import StripePayment, new_id

BASIC_AMOUNT, BASIC_STARS = 14900, 17

# The figure over every payment of the user, as it was defined before the index existed.
EVERY_PAYMENT = """
  select coalesce(sum(greatest(0,
           (p.stars_clawed_back - p.stars_shortfall)::bigint
           - p.stars_total::bigint * least(p.amount, p.amount_refunded + lost.amount)
             / p.amount)), 0)::bigint as held
    from public.payments p
   cross join lateral (select coalesce(sum(d.amount), 0)::bigint as amount
                         from public.payment_disputes d
                        where d.payment_id = p.id and d.status = 'lost') lost
   where p.user_id = %s
     and exists (select 1 from public.payment_disputes d
                  where d.payment_id = p.id and d.status in ('needs_response', 'under_review'))
"""


def dispute(db, p: StripePayment, amount: int, *statuses: str) -> None:
    dispute_id = new_id("dp")
    apply_event(db, p.dispute_event("charge.dispute.created", dispute_id, amount, statuses[0]))
    for status in statuses[1:]:
        type_ = "charge.dispute.closed" if status in ("won", "lost") else "charge.dispute.updated"
        apply_event(db, p.dispute_event(type_, dispute_id, amount, status))


def test_held_stars_of_many_payments_in_every_dispute_state_match_the_full_formula(db):
    user = make_user(db)
    payments = [paid(db, user) for _ in range(7)]
    # payments[0] stays as it was paid.
    dispute(db, payments[1], BASIC_AMOUNT, "needs_response")                  # holds 17
    dispute(db, payments[2], BASIC_AMOUNT, "needs_response", "under_review")  # holds 17
    dispute(db, payments[3], BASIC_AMOUNT, "needs_response", "won")           # released
    dispute(db, payments[4], BASIC_AMOUNT, "needs_response", "lost")          # taken for good
    dispute(db, payments[5], BASIC_AMOUNT, "warning_needs_response")          # an inquiry
    # A partial refund, then a dispute over the rest, still open: of the 11 stars taken back
    # (floor(17 x 10000 / 14900)) the refund's 5 are gone for good, 6 are held.
    refund = new_id("re")
    apply_event(db, payments[6].refund_event("refund.created", refund, 5000, "pending"))
    dispute(db, payments[6], 5000, "needs_response")

    row = db.execute(EVERY_PAYMENT, (user,)).fetchone()
    assert held_stars(db, user) == row["held"] == 17 + 17 + 6
    assert star_balance(db, user) == 7 * BASIC_STARS - 17 - 17 - 17 - 11
    assert audit(db, [user]) == []

    # Another user's open dispute is not this user's hold.
    other = make_user(db)
    dispute(db, paid(db, other), BASIC_AMOUNT, "needs_response")
    assert (held_stars(db, user), held_stars(db, other)) == (40, BASIC_STARS)
