"""Which webhook events a Stripe object's state implies, and when the database already shows
them: the table the reconciliation with Stripe (shared/reconciliation.py) works from.

Each object kind (PaymentIntent, refund, dispute) maps its statuses to the events the webhook
handles (`public.stripe_event_types()`); a handled type never synthesized is named in
`STANDS_IN_FOR` with the one that carries the same object to the same SQL handler. The ranks
mirror the order in which the SQL moves each life forward (tests/money/test_reconciliation.py
reads both).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The order in which the SQL moves each life forward (private.unsettled_rank, refund_rank and
# dispute_rank; tests/money/test_reconciliation.py reads both): a state the database has reached
# or passed is already shown. A payment status missing from PAYMENT_RANK has settled.
PAYMENT_RANK = {"pending": 0, "requires_action": 1, "processing": 2, "failed": 3, "canceled": 4}
REFUND_RANK = {"requires_action": 1, "pending": 2, "succeeded": 3, "failed": 4, "canceled": 4}
DISPUTE_RANK = {"warning_needs_response": 1, "warning_under_review": 2, "needs_response": 3,
                "under_review": 4, "won": 5, "lost": 5, "warning_closed": 5, "prevented": 5}

StripeObject = dict[str, Any]


@dataclass(frozen=True)
class PaymentState:
    """What the database knows about one PaymentIntent's payment: its status, and the status of
    each of its refunds and disputes by Stripe id."""

    status: str
    amount: int
    amount_refunded: int
    amount_disputed: int
    refunds: Mapping[str, str] = field(default_factory=dict)
    disputes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """One webhook event a Stripe object's state implies. The event's object is the listed one
    and the synthetic event id ends with its status."""

    event_type: str
    # The Stripe statuses (of the listed object) that call for this event.
    statuses: frozenset[str]
    # The database already shows the effect.
    reflected: Callable[[StripeObject, PaymentState], bool]
    # An extra condition on the object besides its status.
    also: Callable[[StripeObject], bool] = lambda obj: True

    def applies(self, obj: StripeObject) -> bool:
        return obj.get("status") in self.statuses and self.also(obj)

    def state(self, obj: StripeObject) -> str:
        return str(obj.get("status"))


@dataclass(frozen=True)
class Kind:
    """A Stripe object kind: how to list it and which payment it belongs to."""

    name: str
    resource: str  # the `client.v1.<resource>` to list
    intent: Callable[[StripeObject], str | None]
    rules: tuple[Rule, ...]


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _payment_reached(status: str) -> Callable[[StripeObject, PaymentState], bool]:
    """The payment settled, or is at `status` or beyond (the SQL moves unsettled ones forward
    only, and a settled payment never goes back)."""
    return lambda pi, p: p.status not in PAYMENT_RANK or PAYMENT_RANK[p.status] >= PAYMENT_RANK[
        status]


def _refund_reached(re: StripeObject, p: PaymentState) -> bool:
    known = p.refunds.get(str(re.get("id")))
    return known is not None and REFUND_RANK.get(known, 0) >= REFUND_RANK.get(
        str(re.get("status")), 0)


def _dispute_reached(dp: StripeObject, p: PaymentState) -> bool:
    known = p.disputes.get(str(dp.get("id")))
    return known is not None and DISPUTE_RANK.get(known, 0) >= DISPUTE_RANK.get(
        str(dp.get("status")), 0)


KINDS: tuple[Kind, ...] = (
    Kind("payment_intent", "payment_intents", lambda pi: _id(pi.get("id")), (
        Rule("payment_intent.requires_action", frozenset({"requires_action"}),
             _payment_reached("requires_action")),
        Rule("payment_intent.processing", frozenset({"processing"}),
             _payment_reached("processing")),
        Rule("payment_intent.succeeded", frozenset({"succeeded"}),
             lambda pi, p: p.status not in PAYMENT_RANK),
        # A declined card, a failed 3-D Secure challenge or an expired PromptPay code: Stripe
        # asks for a new payment method and says why.
        Rule("payment_intent.payment_failed", frozenset({"requires_payment_method"}),
             _payment_reached("failed"), also=lambda pi: bool(pi.get("last_payment_error"))),
        Rule("payment_intent.canceled", frozenset({"canceled"}), _payment_reached("canceled")),
    )),
    # Each refund by its own status: the SQL recomputes the payment's stars from every refund.
    Kind("refund", "refunds", lambda re: _id(re.get("payment_intent")), (
        Rule("refund.updated", frozenset({"requires_action", "pending", "succeeded", "canceled"}),
             _refund_reached),
        Rule("refund.failed", frozenset({"failed"}), _refund_reached),
    )),
    # A dispute holds the payment's stars from the moment funds are withdrawn until it is won.
    Kind("dispute", "disputes", lambda dp: _id(dp.get("payment_intent")), (
        Rule("charge.dispute.created",
             frozenset({"warning_needs_response", "warning_under_review"}), _dispute_reached),
        Rule("charge.dispute.funds_withdrawn", frozenset({"needs_response", "under_review"}),
             _dispute_reached),
        Rule("charge.dispute.closed", frozenset({"won", "lost", "warning_closed", "prevented"}),
             _dispute_reached),
    )),
)

# The handled event types the reconciliation never synthesizes, and the synthesized one applied
# instead: it carries the same object to the same SQL handler, so the state is the same. None:
# not about a payment (saved cards follow the customer's next save or removal).
STANDS_IN_FOR: dict[str, str | None] = {
    "charge.refunded": "refund.updated",
    "charge.refund.updated": "refund.updated",
    "refund.created": "refund.updated",
    "charge.dispute.updated": "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated": "charge.dispute.closed",
    "payment_method.attached": None,
    "payment_method.updated": None,
    "payment_method.detached": None,
}


def synthesized_types() -> set[str]:
    return {rule.event_type for kind in KINDS for rule in kind.rules}


def plain(obj: Any) -> StripeObject:
    """A StripeObject (or dict) as plain JSON-able dicts."""
    import json

    return dict(json.loads(json.dumps(obj.to_dict() if hasattr(obj, "to_dict") else obj)))


def synthetic_event_id(obj: StripeObject, state: str) -> str:
    return f"evt_resync_{obj['id']}_{state}"
