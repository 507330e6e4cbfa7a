"""Reconciliation with Stripe: what Stripe says about recent payments, applied where the database
does not show it yet, through the webhook's own SQL function (`apply_stripe_event`).

Stripe's PaymentIntents, refunds and disputes created since a point in time are listed (the
client's auto-pagination); each object kind maps, in `KINDS`, to the webhook events its state
implies. An event whose effect the database already shows is left alone; the others are drift,
applied under event ids derived from the object and the state (`evt_resync_<object>_<state>`),
so a second run, the operator's `resync-payment` or the real event arriving later changes
nothing twice. Every event type `public.stripe_event_types()` lists is either one `Rule` of its
kind or, in `STANDS_IN_FOR`, carried by another that reaches the same SQL handler (a test reads
both).

Runs from the job consumer (QStash schedule `mimivibe-reconcile`, body `{"task": "reconcile"}`)
and by hand (`python -m ops.admin reconcile --since ... [--dry-run]`); reports drift as the
ReconciliationDrift metric and one log line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from shared import observability

logger = logging.getLogger("mimivibe.reconciliation")

APPLY_FUNCTION = "apply_stripe_event"
DEFAULT_WINDOW_SECONDS = 3 * 86400
PAGE_SIZE = 100

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


class Store(Protocol):
    """The database side: payments by PaymentIntent id, and the webhook's apply function."""

    def payments(self, intent_ids: Sequence[str]) -> dict[str, PaymentState]: ...

    def apply(self, event_id: str, event_type: str, obj: StripeObject) -> dict[str, Any]: ...


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


class Drift(BaseModel):
    kind: str
    payment_intent: str
    event_id: str
    event_type: str
    object_id: str
    result: str | None = None


class ReconciliationReport(BaseModel):
    since: int
    dry_run: bool
    checked: dict[str, int] = {}
    unknown_payments: int = 0
    drift: int = 0
    applied: int = 0
    events: list[Drift] = []
    duration_ms: int = 0


@dataclass
class _Candidate:
    kind: Kind
    obj: StripeObject
    intent: str
    rules: list[Rule] = field(default_factory=list)


class Reconciler:
    def __init__(self, *, stripe_client: Any, store: Store,
                 kinds: Sequence[Kind] = KINDS) -> None:
        self._stripe = stripe_client
        self._store = store
        self._kinds = tuple(kinds)

    def _listed(self, kind: Kind, since: int) -> Iterator[StripeObject]:
        resource = getattr(self._stripe.v1, kind.resource)
        page = resource.list(params={"created": {"gte": since}, "limit": PAGE_SIZE})
        for obj in page.auto_paging_iter():
            yield plain(obj)

    def _list_all(self, kind: Kind, since: int) -> list[StripeObject]:
        """Every object of the window; Stripe unreachable is the caller's 502, so QStash retries
        the scheduled run and an operator sees why."""
        import stripe

        from shared.stripe_client import stripe_error

        try:
            return list(self._listed(kind, since))
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc

    def run(self, *, since: int | None = None, dry_run: bool = False) -> ReconciliationReport:
        """Compare Stripe's objects created since `since` (epoch seconds; default three days
        ago) with the database and apply what is missing, unless `dry_run`."""
        started = time.monotonic()
        since = int(since if since is not None else time.time() - DEFAULT_WINDOW_SECONDS)
        report = ReconciliationReport(since=since, dry_run=dry_run)
        candidates: list[_Candidate] = []
        for kind in self._kinds:
            listed = self._list_all(kind, since)
            report.checked[kind.name] = len(listed)
            for obj in listed:
                intent = kind.intent(obj)
                rules = [r for r in kind.rules if r.applies(obj)]
                if intent and rules:
                    candidates.append(_Candidate(kind, obj, intent, rules))
        known = self._payments({c.intent for c in candidates})
        seen: set[str] = set()
        for candidate in candidates:
            payment = known.get(candidate.intent)
            if payment is None:
                report.unknown_payments += 1
                continue
            for rule in candidate.rules:
                subject = candidate.obj
                event_id = synthetic_event_id(subject, rule.state(subject))
                if event_id in seen or rule.reflected(subject, payment):
                    continue
                seen.add(event_id)
                drift = Drift(kind=candidate.kind.name, payment_intent=candidate.intent,
                              event_id=event_id, event_type=rule.event_type,
                              object_id=str(subject["id"]))
                if not dry_run:
                    result = self._store.apply(event_id, rule.event_type, subject)
                    drift.result = str(result.get("result"))
                    report.applied += 0 if result.get("duplicate") else 1
                report.events.append(drift)
        report.drift = len(report.events)
        report.duration_ms = int((time.monotonic() - started) * 1000)
        observability.record_reconciliation(report.drift, report.applied)
        logger.log(logging.WARNING if report.drift else logging.INFO, "reconciliation finished",
                   extra={"since": since, "dry_run": dry_run, "checked": report.checked,
                          "drift": report.drift, "applied": report.applied,
                          "unknown_payments": report.unknown_payments,
                          "drift_events": [d.model_dump() for d in report.events]})
        return report

    def _payments(self, intents: Iterable[str]) -> dict[str, PaymentState]:
        ordered = sorted(intents)
        found: dict[str, PaymentState] = {}
        for start in range(0, len(ordered), PAGE_SIZE):
            found.update(self._store.payments(ordered[start:start + PAGE_SIZE]))
        return found


def resync_events(client: Any, payment_intent_id: str) -> tuple[StripeObject,
                                                                list[tuple[str, str, StripeObject]]]:
    """Every event (id, type, object) the rules derive from one PaymentIntent's state now: the
    intent's own, then its refunds' and its disputes'; for `ops.admin resync-payment`."""
    intent = plain(client.v1.payment_intents.retrieve(payment_intent_id))
    objects: list[tuple[Kind, StripeObject]] = [(KINDS[0], intent)]
    for kind in KINDS[1:]:
        page = getattr(client.v1, kind.resource).list(
            params={"payment_intent": payment_intent_id, "limit": PAGE_SIZE})
        objects += [(kind, plain(obj)) for obj in page.auto_paging_iter()]
    events = [(synthetic_event_id(obj, rule.state(obj)), rule.event_type, obj)
              for kind, obj in objects for rule in kind.rules if rule.applies(obj)]
    return intent, events


def payment_states(payments: Iterable[Mapping[str, Any]], refunds: Iterable[Mapping[str, Any]],
                   disputes: Iterable[Mapping[str, Any]]) -> dict[str, PaymentState]:
    """PaymentStates by PaymentIntent id from rows of payments (with their `id`) and of their
    refunds and disputes (with `payment_id`)."""
    refunds_of: dict[str, dict[str, str]] = {}
    for r in refunds:
        refunds_of.setdefault(str(r["payment_id"]), {})[r["stripe_refund_id"]] = r["status"]
    disputes_of: dict[str, dict[str, str]] = {}
    for d in disputes:
        disputes_of.setdefault(str(d["payment_id"]), {})[d["stripe_dispute_id"]] = d["status"]
    return {p["stripe_payment_intent_id"]: PaymentState(
        status=p["status"], amount=int(p["amount"]), amount_refunded=int(p["amount_refunded"]),
        amount_disputed=int(p["amount_disputed"]), refunds=refunds_of.get(str(p["id"]), {}),
        disputes=disputes_of.get(str(p["id"]), {})) for p in payments}


class PostgrestStore:
    """The store through PostgREST as service_role (what the functions use)."""

    def __init__(self, database: Any) -> None:
        self._database = database

    def payments(self, intent_ids: Sequence[str]) -> dict[str, PaymentState]:
        from shared.db import execute

        service = self._database.service
        rows = execute(service.table("payments").select(
            "id,stripe_payment_intent_id,status,amount,amount_refunded,amount_disputed",
        ).in_("stripe_payment_intent_id", list(intent_ids))).data
        ids = [r["id"] for r in rows]
        if not ids:
            return {}
        refunds = execute(service.table("payment_refunds").select(
            "payment_id,stripe_refund_id,status").in_("payment_id", ids)).data
        disputes = execute(service.table("payment_disputes").select(
            "payment_id,stripe_dispute_id,status").in_("payment_id", ids)).data
        return payment_states(rows, refunds, disputes)

    def apply(self, event_id: str, event_type: str, obj: StripeObject) -> dict[str, Any]:
        from shared.db import execute

        return dict(execute(self._database.service.rpc(APPLY_FUNCTION, {
            "p_event_id": event_id, "p_event_type": event_type, "p_object": obj,
        })).data)
