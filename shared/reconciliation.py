"""Reconciliation with Stripe: what Stripe says about recent payments, applied where the database
does not show it yet, through the webhook's own SQL function (`apply_stripe_event`).

Stripe's PaymentIntents, refunds and disputes created since a point in time are listed (the
client's auto-pagination); each object kind maps, in `KINDS` (shared/reconciliation_rules.py), to
the webhook events its state implies. An event whose effect the database already shows is left alone; the others are drift,
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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from shared import observability
from shared.reconciliation_rules import (
    KINDS,
    Kind,
    PaymentState,
    Rule,
    StripeObject,
    plain,
    synthetic_event_id,
)

logger = logging.getLogger("mimivibe.reconciliation")

APPLY_FUNCTION = "apply_stripe_event"
DEFAULT_WINDOW_SECONDS = 3 * 86400
PAGE_SIZE = 100

class Store(Protocol):
    """The database side: payments by PaymentIntent id, and the webhook's apply function."""

    def payments(self, intent_ids: Sequence[str]) -> dict[str, PaymentState]: ...

    def apply(self, event_id: str, event_type: str, obj: StripeObject) -> dict[str, Any]: ...


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
