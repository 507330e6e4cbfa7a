"""Reconciliation with Stripe: what Stripe says about recent payments, applied where the database
does not show it yet, through the webhook's own SQL function (`apply_stripe_event`).

Stripe's PaymentIntents, refunds and disputes created since a point in time are listed (the
client's auto-pagination); each object kind maps, in `KINDS`, to the webhook events its state
implies. An event whose effect the database already shows is left alone; the others are drift,
applied under event ids derived from the object and the state (`evt_resync_<object>_<state>`),
so a second run, the operator's `resync-payment` or the real event arriving later changes
nothing twice. A new webhook event type plugs in as one more `Rule` of its kind.

Runs from the job consumer (QStash schedule `mimivibe-reconcile`, body `{"task": "reconcile"}`)
and by hand (`python -m ops.admin reconcile --since ... [--dry-run]`); reports drift as the
ReconciliationDrift metric and one log line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from shared import observability
from shared.container import PerSettings

logger = logging.getLogger("mimivibe.reconciliation")

APPLY_FUNCTION = "apply_stripe_event"
DEFAULT_WINDOW_SECONDS = 3 * 86400
PAGE_SIZE = 100
# Database statuses of a payment that was never settled.
UNSETTLED = ("pending", "failed", "canceled")

StripeObject = dict[str, Any]


@dataclass(frozen=True)
class PaymentState:
    """What the database knows about one PaymentIntent's payment."""

    status: str
    amount: int
    amount_refunded: int
    amount_disputed: int


class Store(Protocol):
    """The database side: payments by PaymentIntent id, and the webhook's apply function."""

    def payments(self, intent_ids: Sequence[str]) -> dict[str, PaymentState]: ...

    def apply(self, event_id: str, event_type: str, obj: StripeObject) -> dict[str, Any]: ...


class Fetch:
    """Stripe objects a rule needs besides the listed one (a refund's charge), fetched once."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._charges: dict[str, StripeObject] = {}

    def charge(self, charge_id: str) -> StripeObject:
        if charge_id not in self._charges:
            self._charges[charge_id] = plain(self._client.v1.charges.retrieve(charge_id))
        return self._charges[charge_id]


@dataclass(frozen=True)
class Rule:
    """One webhook event a Stripe object's state implies."""

    event_type: str
    # Stripe's state calls for this event (on the listed object).
    applies: Callable[[StripeObject], bool]
    # The event's object (the listed one, or one it points at), fetched only when it applies.
    subject: Callable[[StripeObject, Fetch], StripeObject]
    # The state, as the last part of the synthetic event id.
    state: Callable[[StripeObject], str]
    # The database already shows the effect.
    reflected: Callable[[StripeObject, PaymentState], bool]


@dataclass(frozen=True)
class Kind:
    """A Stripe object kind: how to list it and which payment it belongs to."""

    name: str
    resource: str  # the `client.v1.<resource>` to list
    intent: Callable[[StripeObject], str | None]
    rules: tuple[Rule, ...]


def _same(obj: StripeObject, fetch: Fetch) -> StripeObject:
    return obj


def _refund_charge(refund: StripeObject, fetch: Fetch) -> StripeObject:
    return fetch.charge(_id(refund.get("charge")) or "")


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


KINDS: tuple[Kind, ...] = (
    Kind("payment_intent", "payment_intents", lambda pi: _id(pi.get("id")), (
        Rule("payment_intent.succeeded", lambda pi: pi.get("status") == "succeeded", _same,
             lambda pi: "succeeded", lambda pi, p: p.status not in UNSETTLED),
        Rule("payment_intent.canceled", lambda pi: pi.get("status") == "canceled", _same,
             lambda pi: "canceled", lambda pi, p: p.status not in ("pending", "failed")),
        Rule("payment_intent.payment_failed",
             lambda pi: pi.get("status") == "requires_payment_method"
             and bool(pi.get("last_payment_error")),
             _same, lambda pi: "failed", lambda pi, p: p.status != "pending"),
    )),
    # The webhook applies refunds from `charge.refunded` (the charge's cumulative amount).
    Kind("refund", "refunds", lambda re: _id(re.get("payment_intent")), (
        Rule("charge.refunded", lambda re: re.get("status") in ("succeeded", "pending"),
             _refund_charge, lambda ch: f"refunded_{int(ch.get('amount_refunded') or 0)}",
             lambda ch, p: p.amount_refunded >= min(p.amount,
                                                    int(ch.get("amount_refunded") or 0))),
    )),
    Kind("dispute", "disputes", lambda dp: _id(dp.get("payment_intent")), (
        Rule("charge.dispute.closed", lambda dp: dp.get("status") == "lost", _same,
             lambda dp: "lost",
             lambda dp, p: p.amount_disputed >= min(p.amount, int(dp.get("amount") or 0))),
    )),
)


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
        fetch = Fetch(self._stripe)
        seen: set[str] = set()
        for candidate in candidates:
            payment = known.get(candidate.intent)
            if payment is None:
                report.unknown_payments += 1
                continue
            for rule in candidate.rules:
                subject = rule.subject(candidate.obj, fetch)
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
    intent's own, and its latest charge's refunds; for `ops.admin resync-payment`."""
    intent = plain(client.v1.payment_intents.retrieve(payment_intent_id))
    fetch = Fetch(client)
    events = [(synthetic_event_id(intent, rule.state(intent)), rule.event_type, intent)
              for rule in KINDS[0].rules if rule.applies(intent)]
    charge_id = _id(intent.get("latest_charge"))
    if intent.get("status") == "succeeded" and charge_id:
        charge = fetch.charge(charge_id)
        if int(charge.get("amount_refunded") or 0) > 0:
            state = f"refunded_{int(charge['amount_refunded'])}"
            events.append((synthetic_event_id(charge, state), "charge.refunded", charge))
    return intent, events


class PostgrestStore:
    """The store through PostgREST as service_role (what the functions use)."""

    def __init__(self, database: Any) -> None:
        self._database = database

    def payments(self, intent_ids: Sequence[str]) -> dict[str, PaymentState]:
        from shared.db import execute

        rows = execute(self._database.service.table("payments").select(
            "stripe_payment_intent_id,status,amount,amount_refunded,amount_disputed",
        ).in_("stripe_payment_intent_id", list(intent_ids))).data
        return {r["stripe_payment_intent_id"]: PaymentState(
            status=r["status"], amount=int(r["amount"]), amount_refunded=int(r["amount_refunded"]),
            amount_disputed=int(r["amount_disputed"])) for r in rows}

    def apply(self, event_id: str, event_type: str, obj: StripeObject) -> dict[str, Any]:
        from shared.db import execute

        return dict(execute(self._database.service.rpc(APPLY_FUNCTION, {
            "p_event_id": event_id, "p_event_type": event_type, "p_object": obj,
        })).data)


def build_reconciler() -> Reconciler:
    from shared.db import get_database
    from shared.stripe_client import get_stripe_client

    return Reconciler(stripe_client=get_stripe_client(), store=PostgrestStore(get_database()))


_reconciler: PerSettings[Reconciler] = PerSettings(lambda _settings: build_reconciler())


def get_reconciler() -> Reconciler:
    return _reconciler.get()


def set_reconciler(reconciler: Reconciler | None) -> None:
    """Inject a reconciler (tests), or drop the cached one with None."""
    _reconciler.set(reconciler)
