"""An erasure racing the user's own purchase, readings and a Stripe webhook, all through the
function URLs: every call answers without a server error, the wallets add up, each reading is
refunded once at most, and the cleanup leaves no Stripe Customer behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import psycopg
from psycopg.rows import dict_row

from shared.account_cleanup import sweep_account_cleanups
from tests.account.app import AppUser, ask, buy, delete_account, sign_in
from tests.account.conftest import occurrences
from tests.money.stack import MoneyStack

# How long the erasure waits after the others start, per round: from a dead heat to the others
# being well into their SQL, so both orders of every pair of transactions happen.
ERASE_DELAYS = (0.0, 0.01, 0.03, 0.06)


def race(calls: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {name: pool.submit(run, call) for name, call in calls.items()}
        return {name: future.result(timeout=120) for name, future in futures.items()}


def confirm(stack: MoneyStack, intent_id: str) -> int:
    stack.stripe.v1.payment_intents.confirm(intent_id, {"payment_method": "pm_card_visa"})
    return 200


def erase_after(stack: MoneyStack, user: AppUser, delay: float) -> Any:
    time.sleep(delay)
    return delete_account(stack, user)


def test_erase_purchase_readings_and_a_webhook_at_once(stack: MoneyStack):
    from shared import bootstrap

    users: list[tuple[AppUser, dict[str, Any]]] = []
    for delay in ERASE_DELAYS:
        user = sign_in(stack)
        buy(stack, user)  # 17 stars
        pending = buy(stack, user, "starter", confirm=False)
        results = race({
            "erase": partial(erase_after, stack, user, delay),
            "purchase": partial(stack.call, "purchase", user, json={"package": "basic"}),
            "reading-1": partial(ask, stack, user, "Does racewordone matter?"),
            "reading-2": partial(ask, stack, user, "Does racewordtwo matter?"),
            "webhook": partial(confirm, stack, pending["payment_intent_id"]),
        })
        assert results["erase"].status_code == 202, results["erase"].text
        # A purchase that loses the race is refused: its token (401), or Stripe, when the
        # Customer it names was deleted by the cleanup in between (422).
        assert results["purchase"].status_code in (201, 401, 422), results["purchase"].text
        for name in ("reading-1", "reading-2"):
            assert results[name].status_code in (202, 401, 402), results[name].text
        users.append((user, pending))

    assert stack.standin.wait_quiet(30)
    for event in stack.standin.event_log():
        assert event["delivered"], event
        assert all(a["status"] is not None and a["status"] < 500 for a in event["attempts"])
    with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as conn:
        assert conn.execute("select * from public.wallet_audit()").fetchall() == []
        for user, pending in users:
            assert conn.execute("select star_balance, coin_balance from public.users"
                                " where id = %s", (user.id,)).fetchone() == {
                "star_balance": 0, "coin_balance": 0}
            assert conn.execute("select status from public.payments where id = %s",
                                (pending["payment_id"],)).fetchone() == {"status": "succeeded"}
            ledger = conn.execute(
                "select transaction_type, related_job_id from public.wallet_transactions"
                " where user_id = %s", (user.id,)).fetchall()
            charged = sorted(str(r["related_job_id"]) for r in ledger
                             if r["transaction_type"] == "reading")
            refunded = sorted(str(r["related_job_id"]) for r in ledger
                              if r["transaction_type"] == "refund")
            assert charged == refunded
            assert conn.execute("select count(*) as n from public.jobs where user_id = %s"
                                " and status <> 'canceled'", (user.id,)).fetchone() == {"n": 0}
        for marker in ("racewordone", "racewordtwo", *(u.email for u, _ in users)):
            assert occurrences(conn, marker) == [], marker

        # A Customer that a racing purchase created after the erasure is removed by the sweep.
        conn.execute("update private.account_erasures set next_cleanup_at = now()"
                     " where cleanup_done_at is null")
        bootstrap.override(stripe=stack.stripe)
        try:
            services = bootstrap.services()
            sweep_account_cleanups(services.database, lambda: services.account_cleanup)
        finally:
            bootstrap.reset()
        left = conn.execute("select c.user_id from public.stripe_customers c"
                            " join public.users u on u.id = c.user_id"
                            " where u.erased_at is not null").fetchall()
        assert left == []
