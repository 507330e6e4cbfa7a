"""Reconciliation with Stripe: webhook events lost on purpose (the stand-in holds every delivery)
leave payments pending, refunds and lost disputes unapplied; the reconciliation (scheduled
through the job consumer's URL, or `ops.admin reconcile`) lists Stripe's recent objects, applies
what is missing through apply_stripe_event, and a second run finds nothing. The held events
delivered afterwards change nothing."""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg.rows import dict_row

from devstack.qstash_standin.signing import sign_delivery
from ops.admin import main
from ops.reconcile import reconcile
from shared.reconciliation import KINDS, PaymentState, Reconciler
from tests.money.stack import JOB_CONSUMER_URL, QSTASH_CURRENT_KEY, STRIPE_KEY, MoneyStack, User

AS_OPERATOR = ["--operator", "ops@mimivibe", "--reason", "webhooks were down"]


def reconcile_through_the_job_consumer(stack: MoneyStack, body: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    response = stack.http.post(f"{stack.functions_url}/job-consumer", content=raw, headers={
        "Upstash-Signature": sign_delivery(QSTASH_CURRENT_KEY, url=JOB_CONSUMER_URL, body=raw),
        "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return dict(response.json())


def state(stack: MoneyStack, users: list[User]) -> dict[str, Any]:
    with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as db:
        payments = db.execute(
            "select u.id::text as user_id, u.star_balance, p.status::text as status,"
            " p.amount_refunded, p.amount_disputed from public.users u"
            " join public.payments p on p.user_id = u.id where u.id = any(%s::uuid[])"
            " order by u.id", ([u.id for u in users],)).fetchall()
        audit = db.execute("select * from public.wallet_audit()").fetchall()
    return {"payments": {p["user_id"]: p for p in payments}, "audit": audit}


def buy(stack: MoneyStack, user: User) -> dict[str, Any]:
    response = stack.call("purchase", user, key=str(uuid.uuid4()), json={
        "package": "basic", "payment_method_id": "pm_card_visa"})
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def test_lost_webhooks_are_repaired_by_the_reconciliation_and_a_second_run_finds_nothing(
        stack: MoneyStack) -> None:
    paid, refunded, disputed = (stack.sign_in(n) for n in ("Paid", "Refunded", "Disputed"))
    users = [paid, refunded, disputed]
    stack.control.configure_delivery(hold=True)
    try:
        purchases = {u.id: buy(stack, u) for u in users}
        intents = {u.id: stack.stripe.v1.payment_intents.retrieve(
            purchases[u.id]["payment_intent_id"]) for u in users}
        stack.stripe.v1.refunds.create(params={
            "payment_intent": intents[refunded.id].id, "amount": 7450})
        dispute = stack.control.open_dispute(str(intents[disputed.id].latest_charge))
        stack.control.close_dispute(dispute["id"], "lost")
        before = state(stack, users)
        assert {p["status"] for p in before["payments"].values()} == {"pending"}
        assert {p["star_balance"] for p in before["payments"].values()} == {0}

        # By hand, dry run: the drift is reported (exit 1) and nothing is applied.
        assert main([*AS_OPERATOR, "--database-url", stack.database_url, "reconcile",
                     "--since", "1h", "--dry-run", "--stripe-key", STRIPE_KEY,
                     "--stripe-api-base", stack.stripe_url]) == 1
        dry = reconcile(stack.database_url, stack.stripe, since=int(time.time()) - 3600,
                        dry_run=True)
        assert dry["applied"] == 0
        assert state(stack, users) == before
        mine = {pi.id for pi in intents.values()}
        drift = {(e["event_type"], e["payment_intent"]) for e in dry["events"]
                 if e["payment_intent"] in mine}
        assert drift == {
            *{("payment_intent.succeeded", pi.id) for pi in intents.values()},
            ("charge.refunded", intents[refunded.id].id),
            ("charge.dispute.closed", intents[disputed.id].id)}

        # Scheduled: through the job consumer's function URL, signed as QStash signs.
        report = reconcile_through_the_job_consumer(stack, {"task": "reconcile",
                                                            "since_hours": 1})
        assert report["drift"] >= len(drift) and report["applied"] == report["drift"]
        after = state(stack, users)["payments"]
        assert after[paid.id]["status"] == "succeeded" and after[paid.id]["star_balance"] == 17
        assert after[refunded.id]["amount_refunded"] == 7450
        assert after[refunded.id]["star_balance"] == 17 - 17 * 7450 // 14900
        assert after[disputed.id]["status"] == "disputed"
        assert after[disputed.id]["star_balance"] == 0
        assert state(stack, users)["audit"] == []

        again = reconcile_through_the_job_consumer(stack, {"task": "reconcile",
                                                           "since_hours": 1})
        assert (again["drift"], again["applied"]) == (0, 0)
        assert again["checked"]["payment_intent"] >= 3
    finally:
        stack.control.configure_delivery(hold=False)
        stack.control.release()
    # The lost events, delivered late, change nothing.
    assert stack.control.wait_quiet(timeout=20)
    assert state(stack, users)["payments"] == after


def test_concurrent_reconciliations_and_late_webhooks_credit_each_payment_once(
        stack: MoneyStack) -> None:
    users = [stack.sign_in(f"Racer {i}") for i in range(4)]
    stack.control.configure_delivery(hold=True)
    try:
        for user in users:
            buy(stack, user)
            buy(stack, user)
        start = threading.Barrier(3)

        def reconcile_now() -> dict[str, Any]:
            start.wait()
            return reconcile_through_the_job_consumer(stack, {"task": "reconcile",
                                                              "since_hours": 1})

        def deliver_late() -> None:
            start.wait()
            stack.control.configure_delivery(hold=False)
            stack.control.release(order="shuffle", seed=13)

        with ThreadPoolExecutor(3) as pool:
            runs = [pool.submit(reconcile_now), pool.submit(reconcile_now)]
            pool.submit(deliver_late).result()
            reports = [r.result() for r in runs]
    finally:
        stack.control.configure_delivery(hold=False)
        stack.control.release()
    assert stack.control.wait_quiet(timeout=20)

    assert all(r["applied"] <= r["drift"] for r in reports)
    with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as db:
        balances = db.execute("select star_balance from public.users where id = any(%s::uuid[])",
                              ([u.id for u in users],)).fetchall()
        credits = db.execute(
            "select count(*) as n from public.wallet_transactions w"
            " join public.payments p on p.id = w.related_payment_id"
            " where p.user_id = any(%s::uuid[]) and w.transaction_type = 'purchase'",
            ([u.id for u in users],)).fetchone()
        assert db.execute("select * from public.wallet_audit()").fetchall() == []
    assert [b["star_balance"] for b in balances] == [34] * len(users)
    assert credits is not None and credits["n"] == 2 * len(users)
    again = reconcile_through_the_job_consumer(stack, {"task": "reconcile", "since_hours": 1})
    assert (again["drift"], again["applied"]) == (0, 0)


class FakeStripe:
    """Stripe's list and retrieve calls over fixed objects (our own interface's shape)."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.v1 = self
        self.calls: list[tuple[str, dict[str, Any]]] = []
        for resource, items in objects.items():
            setattr(self, resource, _Listing(resource, items, self.calls))
        self.charges = _Listing("charges", objects.get("charges", []), self.calls)


class _Listing:
    def __init__(self, name: str, items: list[dict[str, Any]],
                 calls: list[tuple[str, dict[str, Any]]]) -> None:
        self._name, self._items, self._calls = name, items, calls

    def list(self, params: dict[str, Any]) -> Any:
        self._calls.append((self._name, params))
        items = [i for i in self._items if i["created"] >= params["created"]["gte"]]
        return type("Page", (), {"auto_paging_iter": lambda self: iter(items)})()

    def retrieve(self, object_id: str) -> dict[str, Any]:
        return next(i for i in self._items if i["id"] == object_id)


class FakeStore:
    def __init__(self, payments: dict[str, PaymentState]) -> None:
        self._payments = payments
        self.applied: list[tuple[str, str]] = []

    def payments(self, intent_ids: Any) -> dict[str, PaymentState]:
        return {i: self._payments[i] for i in intent_ids if i in self._payments}

    def apply(self, event_id: str, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.applied.append((event_id, event_type))
        return {"duplicate": False, "result": "applied"}


def test_every_kind_is_listed_since_the_window_and_unknown_payments_are_not_drift() -> None:
    stripe = FakeStripe({
        "payment_intents": [
            {"id": "pi_ours", "created": 100, "status": "succeeded"},
            {"id": "pi_old", "created": 10, "status": "succeeded"},
            {"id": "pi_not_ours", "created": 100, "status": "succeeded"},
        ],
        "refunds": [{"id": "re_1", "created": 100, "status": "succeeded", "charge": "ch_1",
                     "payment_intent": "pi_ours"},
                    {"id": "re_2", "created": 101, "status": "succeeded", "charge": "ch_1",
                     "payment_intent": "pi_ours"}],
        "charges": [{"id": "ch_1", "created": 100, "payment_intent": "pi_ours",
                     "amount_refunded": 900}],
        "disputes": [{"id": "dp_1", "created": 100, "status": "won", "amount": 500,
                      "payment_intent": "pi_ours"}],
    })
    store = FakeStore({"pi_ours": PaymentState("pending", 1000, 0, 0),
                       "pi_old": PaymentState("pending", 1000, 0, 0)})

    report = Reconciler(stripe_client=stripe, store=store).run(since=50)

    assert {name for name, _ in stripe.calls} == {k.resource for k in KINDS}
    assert all(p["created"] == {"gte": 50} and p["limit"] == 100 for _, p in stripe.calls)
    # Two refunds of one charge are one charge.refunded state; a won dispute moves nothing.
    assert store.applied == [("evt_resync_pi_ours_succeeded", "payment_intent.succeeded"),
                             ("evt_resync_ch_1_refunded_900", "charge.refunded")]
    assert (report.drift, report.applied, report.unknown_payments) == (2, 2, 1)
    assert report.checked == {"payment_intent": 2, "refund": 2, "dispute": 1}  # pi_old is older
