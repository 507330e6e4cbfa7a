"""Reconciliation with Stripe: webhook events lost on purpose (the stand-in holds every delivery)
leave payments pending, refunds and disputes unapplied at any point of their lives; the
reconciliation (scheduled through the job consumer's URL, or `ops.admin reconcile`) lists
Stripe's recent objects, applies what is missing through apply_stripe_event, and a second run
finds nothing. The held events delivered afterwards change nothing. Its event types and the
order it reads states in are the SQL's own (`stripe_event_types()`, the rank functions)."""

from __future__ import annotations

import json
import re
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
from shared.reconciliation import Reconciler
from shared.reconciliation_rules import (
    DISPUTE_RANK,
    KINDS,
    PAYMENT_RANK,
    REFUND_RANK,
    STANDS_IN_FOR,
    PaymentState,
    synthesized_types,
)
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
            ("refund.updated", intents[refunded.id].id),
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


def lives(stack: MoneyStack, users: list[User]) -> dict[str, Any]:
    """Each user's payment with its refunds, disputes and held stars."""
    with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as db:
        rows = db.execute(
            "select u.id::text as user_id, u.star_balance, private.held_stars(u.id) as held,"
            " p.status::text as status, p.amount_refunded, p.amount_disputed,"
            " (select array_agg(r.status order by r.created_at) from public.payment_refunds r"
            "   where r.payment_id = p.id) as refunds,"
            " (select array_agg(d.status order by d.created_at) from public.payment_disputes d"
            "   where d.payment_id = p.id) as disputes"
            " from public.users u join public.payments p on p.user_id = u.id"
            " where u.id = any(%s::uuid[])", ([u.id for u in users],)).fetchall()
        assert db.execute("select * from public.wallet_audit()").fetchall() == []
    return {r["user_id"]: r for r in rows}


def test_lost_webhooks_of_every_refund_and_dispute_life_and_an_expired_promptpay_are_repaired(
        stack: MoneyStack) -> None:
    failed, canceled, held, won = (stack.sign_in(n) for n in ("Failed", "Canceled", "Held",
                                                              "Won"))
    promptpay = stack.sign_in("PromptPay", email=True)
    users = [failed, canceled, held, won, promptpay]
    stack.control.configure_delivery(hold=True)
    try:
        intents = {u.id: stack.stripe.v1.payment_intents.retrieve(
            buy(stack, u)["payment_intent_id"]) for u in users[:4]}
        refund = stack.stripe.v1.refunds.create(params={"payment_intent": intents[failed.id].id})
        stack.control.move_refund(refund.id, "failed")
        stack.control.set_refund_start("requires_action")
        try:
            waiting = stack.stripe.v1.refunds.create(params={
                "payment_intent": intents[canceled.id].id, "amount": 5000})
        finally:
            stack.control.set_refund_start(None)
        stack.stripe.v1.refunds.cancel(waiting.id)
        stack.control.open_dispute(str(intents[held.id].latest_charge))
        dispute = stack.control.open_dispute(str(intents[won.id].latest_charge))
        stack.control.close_dispute(dispute["id"], "won")
        qr = stack.call("purchase", promptpay, key=str(uuid.uuid4()), json={
            "package": "starter", "payment_method_type": "promptpay"})
        assert qr.status_code == 201 and qr.json()["status"] == "requires_action", qr.text
        intents[promptpay.id] = stack.stripe.v1.payment_intents.retrieve(
            qr.json()["payment_intent_id"])
        stack.control.settle_promptpay(intents[promptpay.id].id, "expire")
        before = lives(stack, users)
        assert {before[u.id]["status"] for u in users[:4]} == {"pending"}
        assert before[promptpay.id]["status"] == "requires_action"

        report = reconcile(stack.database_url, stack.stripe, since=int(time.time()) - 3600)
        mine = {pi.id for pi in intents.values()}
        assert {(e["event_type"], e["payment_intent"]) for e in report["events"]
                if e["payment_intent"] in mine} == {
            *{("payment_intent.succeeded", intents[u.id].id) for u in users[:4]},
            ("refund.failed", intents[failed.id].id),
            ("refund.updated", intents[canceled.id].id),
            ("charge.dispute.funds_withdrawn", intents[held.id].id),
            ("charge.dispute.closed", intents[won.id].id),
            ("payment_intent.payment_failed", intents[promptpay.id].id)}
        after = lives(stack, users)
        assert after[failed.id]["refunds"] == ["failed"]
        assert after[canceled.id]["refunds"] == ["canceled"]
        for user in (failed, canceled):  # a refund that never happened takes nothing
            assert (after[user.id]["status"], after[user.id]["star_balance"],
                    after[user.id]["amount_refunded"]) == ("succeeded", 17, 0)
        assert after[held.id]["disputes"] == ["needs_response"]
        assert (after[held.id]["status"], after[held.id]["star_balance"],
                after[held.id]["held"]) == ("disputed", 0, 17)
        assert after[won.id]["disputes"] == ["won"]
        assert (after[won.id]["status"], after[won.id]["star_balance"],
                after[won.id]["held"]) == ("succeeded", 17, 0)
        assert (after[promptpay.id]["status"], after[promptpay.id]["star_balance"]) == (
            "failed", 0)

        # The scheduled run (the functions' store) finds nothing left.
        again = reconcile_through_the_job_consumer(stack, {"task": "reconcile",
                                                           "since_hours": 1})
        assert (again["drift"], again["applied"]) == (0, 0)
        assert again["checked"]["refund"] >= 2 and again["checked"]["dispute"] >= 2
    finally:
        stack.control.configure_delivery(hold=False)
        stack.control.release()
    # The lost events, delivered late and in their own order, change nothing.
    assert stack.control.wait_quiet(timeout=20)
    assert lives(stack, users) == after


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
            {"id": "pi_expired", "created": 100, "status": "requires_payment_method",
             "last_payment_error": {"code": "payment_intent_payment_attempt_expired"}},
            {"id": "pi_waiting", "created": 100, "status": "requires_action"},
        ],
        "refunds": [{"id": "re_1", "created": 100, "status": "succeeded", "charge": "ch_1",
                     "payment_intent": "pi_ours"},
                    {"id": "re_2", "created": 101, "status": "failed", "charge": "ch_1",
                     "payment_intent": "pi_ours"},
                    {"id": "re_3", "created": 101, "status": "canceled", "charge": "ch_1",
                     "payment_intent": "pi_ours"}],
        "disputes": [{"id": "dp_1", "created": 100, "status": "won", "amount": 500,
                      "payment_intent": "pi_ours"},
                     {"id": "dp_2", "created": 100, "status": "needs_response", "amount": 500,
                      "payment_intent": "pi_ours"}],
    })
    store = FakeStore({
        # re_3 is known as pending (behind Stripe), re_1 as succeeded; dp_2 is known as held.
        "pi_ours": PaymentState("pending", 1000, 0, 0, refunds={"re_1": "succeeded",
                                                                "re_3": "pending"},
                                disputes={"dp_2": "needs_response"}),
        "pi_old": PaymentState("pending", 1000, 0, 0),
        # The purchase already recorded the QR code's requires_action; it expired since.
        "pi_expired": PaymentState("requires_action", 1000, 0, 0),
        "pi_waiting": PaymentState("requires_action", 1000, 0, 0),
    })

    report = Reconciler(stripe_client=stripe, store=store).run(since=50)

    assert {name for name, _ in stripe.calls} == {k.resource for k in KINDS}
    assert all(p["created"] == {"gte": 50} and p["limit"] == 100 for _, p in stripe.calls)
    assert store.applied == [
        ("evt_resync_pi_ours_succeeded", "payment_intent.succeeded"),
        ("evt_resync_pi_expired_requires_payment_method", "payment_intent.payment_failed"),
        ("evt_resync_re_2_failed", "refund.failed"),
        ("evt_resync_re_3_canceled", "refund.updated"),
        ("evt_resync_dp_1_won", "charge.dispute.closed")]
    assert (report.drift, report.applied, report.unknown_payments) == (5, 5, 1)
    assert report.checked == {"payment_intent": 4, "refund": 3, "dispute": 2}  # pi_old is older


def test_the_reconciliation_synthesizes_or_stands_in_for_every_handled_event_type(db) -> None:
    handled = set(db.execute("select public.stripe_event_types() as t").fetchone()["t"])
    synthesized = synthesized_types()
    assert synthesized <= handled
    assert set(STANDS_IN_FOR) == handled - synthesized
    # Each type it leaves out reaches the same SQL handler, with the same object, as the one
    # applied instead; a charge's refunds are each applied as refunds.
    definition = db.execute(
        "select pg_get_functiondef('public.apply_stripe_event(text, text, jsonb, jsonb)'"
        "::regprocedure) as d").fetchone()["d"]
    dispatch = dict(re.findall(r"when '([a-z_.]+)'\s+then (private\.\w+\([^)]*\))", definition))
    assert set(dispatch) == handled
    for event_type, instead in STANDS_IN_FOR.items():
        if instead is None:
            assert event_type.startswith("payment_method."), event_type
        elif event_type == "charge.refunded":
            assert dispatch[instead] == "private.on_refund_event(p_object)"
        else:
            assert dispatch[event_type] == dispatch[instead], event_type


def test_the_states_are_read_in_the_order_the_sql_moves_them(db) -> None:
    for table, function, cast in ((PAYMENT_RANK, "private.unsettled_rank", "::public.payment_status"),
                                  (REFUND_RANK, "private.refund_rank", ""),
                                  (DISPUTE_RANK, "private.dispute_rank", "")):
        for status, rank in table.items():
            row = db.execute(f"select {function}(%s{cast}) as r", (status,)).fetchone()
            assert row["r"] == rank, (function, status)
    settled = db.execute("select unnest(enum_range(null::public.payment_status))::text as s"
                         " except select unnest(%s::text[])", (list(PAYMENT_RANK),)).fetchall()
    for row in settled:
        assert db.execute("select private.unsettled_rank(%s::public.payment_status) as r",
                          (row["s"],)).fetchone()["r"] is None
    every_refund = db.execute(
        "select pg_get_constraintdef(oid) as d from pg_constraint"
        " where conrelid = 'public.payment_refunds'::regclass and contype = 'c'"
        " and pg_get_constraintdef(oid) like '%%status%%'").fetchone()["d"]
    every_dispute = db.execute(
        "select pg_get_constraintdef(oid) as d from pg_constraint"
        " where conrelid = 'public.payment_disputes'::regclass and contype = 'c'"
        " and pg_get_constraintdef(oid) like '%%status%%'").fetchone()["d"]
    assert set(re.findall(r"'(\w+)'", every_refund)) == set(REFUND_RANK)
    assert set(re.findall(r"'(\w+)'", every_dispute)) == set(DISPUTE_RANK)
