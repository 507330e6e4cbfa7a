"""Exactly once under any retry or race: a storm of duplicated, shuffled webhook deliveries from
concurrent senders, and a failure injected between receiving an event and committing it."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
from psycopg.rows import dict_row

from devstack.stripe_standin import signature_header
from devstack.stripe_standin.delivery import DeliveryMode
from tests.money.conftest import begin_purchase, make_user, record_intent
from tests.money.events import StripePayment, new_id, signed
from tests.money.stack import WEBHOOK_SECRET, MoneyStack

PAYMENTS = 200
USERS = 20
SENDERS = 16
TIME_LIMIT_SECONDS = 120


def storm_events(payments: list[tuple[uuid.UUID, StripePayment, int]]) -> tuple[list, dict]:
    """Each payment's events (success, failures, refunds and disputes over their lives) and
    the stars each user should end with."""
    events: list[dict] = []
    expected: Counter[uuid.UUID] = Counter()
    for index, (user, p, stars) in enumerate(payments):
        events.append(p.succeeded())
        if index % 5 == 0:
            events.append(p.failed())
        if index % 7 == 0:
            events.append(p.pending("requires_action"))
        events_of_life, reversed_amount = reversal_events(p, index % 10)
        events += events_of_life
        expected[user] += stars - stars * reversed_amount // p.amount
    return events, expected


def reversal_events(p: StripePayment, kind: int) -> tuple[list[dict], int]:
    """One of ten lives after the payment, and the amount it finally reverses."""
    third, half, full = p.amount // 3, p.amount // 2, p.amount
    refund, second, dispute = new_id("re"), new_id("re"), new_id("dp")
    lives: dict[int, tuple[list[dict], int]] = {
        0: ([], 0),
        1: ([p.refunded(full)], full),
        2: ([p.refunded(half), p.refunded(full)], full),
        3: ([p.refunded(third), p.dispute_closed(full - third)], full),
        4: ([p.refunded(third)], third),
        5: ([p.refund_event("refund.created", refund, half, "pending"),
             p.refund_event("refund.failed", refund, half, "failed")], 0),
        6: ([p.refund_event("refund.created", refund, third, "pending"),
             p.refund_event("refund.updated", refund, third, "succeeded"),
             p.refund_event("refund.created", second, third, "requires_action"),
             p.refund_event("charge.refund.updated", second, third, "canceled")], third),
        7: ([p.dispute_event("charge.dispute.created", dispute, full, "needs_response"),
             p.dispute_event("charge.dispute.funds_withdrawn", dispute, full, "needs_response"),
             p.dispute_event("charge.dispute.closed", dispute, full, "won"),
             p.dispute_event("charge.dispute.funds_reinstated", dispute, full, "won")], 0),
        8: ([p.dispute_event("charge.dispute.created", dispute, full, "needs_response"),
             p.dispute_event("charge.dispute.closed", dispute, full, "lost")], full),
        9: ([p.refund_event("refund.created", refund, full, "pending"), p.refunded(full),
             p.refund_event("refund.failed", refund, full, "failed")], 0),
    }
    return lives[kind]


def test_a_webhook_storm_credits_and_claws_back_exactly_once(stack: MoneyStack):
    rng = random.Random(20261127)
    with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as db:
        users = [make_user(db) for _ in range(USERS)]
        payments = []
        for index in range(PAYMENTS):
            user = users[index % USERS]
            row = begin_purchase(db, user, rng.choice(["starter", "basic", "premium"]))
            p = StripePayment(uuid.UUID(row["id"]), row["amount"])
            record_intent(db, p.payment_id, p.intent_id)
            payments.append((user, p, row["stars_total"]))
        events, expected = storm_events(payments)
        deliveries = [signed(e, WEBHOOK_SECRET) for e in events
                      for _ in range(rng.randint(1, 5))]
        rng.shuffle(deliveries)

        statuses: Counter[int] = Counter()
        duplicates = Counter[bool]()
        lock = threading.Lock()
        local = threading.local()
        deadline = time.monotonic() + TIME_LIMIT_SECONDS

        def send(delivery: tuple[bytes, str]) -> None:
            if time.monotonic() > deadline:
                raise TimeoutError("the storm took too long")
            if not hasattr(local, "http"):
                local.http = httpx.Client(timeout=30)
            raw, header = delivery
            response = local.http.post(
                f"{stack.functions_url}/stripe-webhook", content=raw,
                headers={"Stripe-Signature": header, "Content-Type": "application/json"})
            with lock:
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    duplicates[response.json()["duplicate"]] += 1

        with ThreadPoolExecutor(SENDERS) as pool:
            list(pool.map(send, deliveries))

        assert statuses == {200: len(deliveries)}
        assert duplicates[False] == len(events)
        assert duplicates[True] == len(deliveries) - len(events)
        balances = {r["id"]: r["star_balance"] for r in db.execute(
            "select id, star_balance from public.users where id = any(%s)", (users,))}
        assert balances == {user: expected[user] for user in users}
        credits = db.execute(
            "select related_payment_id, count(*) as n from public.wallet_transactions"
            " where transaction_type = 'purchase' and related_payment_id = any(%s)"
            " group by related_payment_id",
            ([p.payment_id for _, p, _ in payments],)).fetchall()
        assert len(credits) == PAYMENTS and {c["n"] for c in credits} == {1}
        held = db.execute("select sum(private.held_stars(id)) as n from public.users"
                          " where id = any(%s)", (users,)).fetchone()
        assert held is not None and held["n"] == 0  # every dispute of the storm is closed
        assert db.execute("select * from public.wallet_audit()").fetchall() == []


def test_a_failure_before_commit_is_5xx_and_the_retry_converges(stack: MoneyStack):
    user = stack.sign_in()
    stack.control.configure_delivery(hold=True)
    with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as db:
        try:
            purchase = stack.call("purchase", user, key=str(uuid.uuid4()), json={
                "package": "basic", "payment_method_id": "pm_card_visa"}).json()
            [succeeded] = [e for e in stack.control.events("payment_intent.succeeded")
                           if e["object_id"] == purchase["payment_intent_id"]]
            # Fails once, after the stars are written and before the commit.
            db.execute("create sequence if not exists money_test_failures")
            db.execute(f"""
                create or replace function public.money_test_fail() returns trigger
                language plpgsql set search_path = '' as $$
                begin
                  if new.related_payment_id = '{purchase["payment_id"]}'
                     and nextval('public.money_test_failures') = 1 then
                    raise exception 'injected failure';
                  end if;
                  return new;
                end $$""")
            db.execute("create trigger money_test_fail after insert on public.wallet_transactions"
                       " for each row execute function public.money_test_fail()")

            raw = stack.standin.render_event(succeeded["id"])
            assert raw is not None
            failed = stack.http.post(
                f"{stack.functions_url}/stripe-webhook", content=raw,
                headers={"Stripe-Signature": signature_header(raw, WEBHOOK_SECRET),
                         "Content-Type": "application/json"})

            assert failed.status_code >= 500
            assert "stack" not in failed.text.lower()
            assert _value(db, "select count(*) from public.stripe_events where id = %s",
                          succeeded["id"]) == 0
            assert _value(db, "select status from public.payments where id = %s",
                          purchase["payment_id"]) == "pending"
            assert stack.me(user)["star_balance"] == 0

            stack.control.release()  # Stripe delivers (and would retry) the same event
            assert stack.control.wait_quiet()
        finally:
            stack.standin.dispatcher.set_mode(DeliveryMode())
            db.execute("drop trigger if exists money_test_fail on public.wallet_transactions")
            db.execute("drop function if exists public.money_test_fail()")
        assert stack.me(user)["star_balance"] == 17
        assert _value(db, "select count(*) from public.stripe_events where id = %s",
                      succeeded["id"]) == 1
        assert db.execute("select * from public.wallet_audit()").fetchall() == []


def _value(db, query, *params):
    row = db.execute(query, params).fetchone()
    assert row is not None
    return next(iter(row.values()))
