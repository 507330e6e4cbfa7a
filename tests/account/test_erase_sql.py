"""public.erase_account: personal data gone from every column of every table, financial records
kept and consistent, open readings refunded once, idempotent; and what happens afterwards to
sign-in, the wallet core, late Stripe events and invites."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.account.conftest import (
    Person,
    as_service,
    create_reading,
    erase,
    occurrences,
    pay,
    populate,
    sign_in,
    text_columns,
)
from tests.db.conftest import apply_change, connect, one
from tests.money.conftest import apply_event


def dead_letters(conn: psycopg.Connection[Any]) -> int:
    return as_service(conn, "select q.dead_letters from public.queue_health() q")["dead_letters"]


@pytest.fixture
def pair(conn: psycopg.Connection[Any]) -> tuple[Person, Person]:
    """Two users with data in every table; `invitee` redeemed `inviter`'s code and paid."""
    inviter, invitee = sign_in(conn), sign_in(conn)
    populate(conn, inviter)
    populate(conn, invitee, inviter=inviter)
    return inviter, invitee


def test_erasure_leaves_no_personal_datum_in_any_column_and_the_other_user_untouched(conn, pair):
    inviter, invitee = pair
    for marker in invitee.markers:
        assert occurrences(conn, marker), marker  # the scan finds what is there
    erase(conn, invitee.id)
    for marker in invitee.markers:
        assert occurrences(conn, marker) == [], marker
    for marker in inviter.markers:
        assert occurrences(conn, marker), marker


def test_the_scan_covers_the_payment_lives_and_finds_the_persons_rows_there(conn, pair):
    _, person = pair
    scanned = {f"{s}.{t}.{c}" for s, t, c in text_columns(conn)}
    assert {"public.payment_refunds.stripe_refund_id", "public.payment_refunds.status",
            "public.payment_disputes.stripe_dispute_id", "public.payment_disputes.status",
            "public.payments.payment_method_type", "public.payments.error_message",
            "public.wallet_transactions.metadata"} <= scanned
    lives = {f"re_{person.tag}": "public.payment_refunds.stripe_refund_id",
             f"dp_{person.tag}": "public.payment_disputes.stripe_dispute_id"}
    for marker, column in lives.items():
        assert occurrences(conn, marker) == [column]
    erase(conn, person.id)
    # The refund and the dispute stay with the payment (accounting), by Stripe id only; the
    # email and name their Stripe objects carried were never stored (the scan above).
    for marker, column in lives.items():
        assert occurrences(conn, marker) == [column]


def test_financial_records_stay_anonymised_with_amounts_and_the_ledger_chain(conn, pair):
    inviter, person = pair
    before = conn.execute(
        "select id, amount, status, stars_purchased, created_at from public.payments"
        " where user_id = %s order by id", (person.id,)).fetchall()
    ledger_before = conn.execute("select * from public.wallet_transactions where user_id = %s"
                                 " order by seq", (person.id,)).fetchall()
    erase(conn, person.id)
    assert conn.execute(
        "select id, amount, status, stars_purchased, created_at from public.payments"
        " where user_id = %s order by id", (person.id,)).fetchall() == before
    ledger_after = conn.execute("select * from public.wallet_transactions where user_id = %s"
                                " order by seq", (person.id,)).fetchall()
    assert ledger_after[:len(ledger_before)] == ledger_before
    user = one(conn, "select * from public.users where id = %s", (person.id,))
    assert user["star_balance"] == 0 and user["coin_balance"] == 0
    assert user["erased_at"] is not None and user["email"] is None and user["name"] is None
    forfeits = [r for r in ledger_after if r["transaction_type"] == "forfeit"]
    assert forfeits and all(r["balance_after"] == 0 for r in forfeits)
    assert conn.execute("select * from public.wallet_audit() where user_id = %s",
                        (person.id,)).fetchall() == []
    # The invite the erased user accepted still counts for the inviter's tier.
    assert one(conn, "select total_invites from public.users where id = %s",
               (inviter.id,))["total_invites"] == 1
    assert one(conn, "select status from public.user_invites where invitee_id = %s",
               (person.id,))["status"] == "accepted"


def test_open_readings_are_canceled_and_refunded_once(conn):
    person = sign_in(conn)
    pay(conn, person)  # 17 stars
    queued = [create_reading(conn, person)["job_id"] for _ in range(3)]
    conn.execute("update public.jobs set status = 'processing', attempts = 1, started_at = now()"
                 " where id = %s", (queued[0],))
    dead_letters_before = dead_letters(conn)
    result = erase(conn, person.id)
    assert result["refunded_jobs"] == 3 and result["forfeited_stars"] == 17
    refunds = conn.execute(
        "select related_job_id from public.wallet_transactions"
        " where user_id = %s and transaction_type = 'refund'", (person.id,)).fetchall()
    assert sorted(str(r["related_job_id"]) for r in refunds) == sorted(queued)
    statuses = conn.execute("select status from public.jobs where user_id = %s",
                            (person.id,)).fetchall()
    assert {r["status"] for r in statuses} == {"canceled"}
    # Canceled readings are no dead letters: nothing for an operator to look at.
    assert dead_letters(conn) == dead_letters_before
    # The consumer finishing a job it was running finds it no longer its own.
    finished = as_service(
        conn, "select public.finish_reading_jobs(%s::jsonb) as r",
        (json.dumps([{"job_id": queued[0], "attempt": 1, "kind": "failure", "error": "x",
                      "error_code": "x", "retryable": True}]),))
    assert finished["r"][0]["outcome"] == "stale"
    assert conn.execute("select count(*) as n from public.wallet_transactions where user_id = %s"
                        " and transaction_type = 'refund'", (person.id,)).fetchone()["n"] == 3


def test_a_second_erasure_changes_nothing_and_answers_with_the_first_erased_at(conn, pair):
    _, person = pair
    first = erase(conn, person.id)
    rows = conn.execute("select count(*) as n from public.wallet_transactions where user_id = %s",
                        (person.id,)).fetchone()["n"]
    second = erase(conn, person.id, by="operator:ops")
    assert second["already_erased"] and not first["already_erased"]
    assert second["erased_at"] == first["erased_at"]
    assert second["forfeited_stars"] == first["forfeited_stars"]
    assert conn.execute("select count(*) as n from public.wallet_transactions where user_id = %s",
                        (person.id,)).fetchone()["n"] == rows


def test_an_unknown_account_is_not_found(conn):
    with pytest.raises(psycopg.Error) as error:
        erase(conn, uuid.uuid4())
    assert error.value.sqlstate == "MV005"


def test_the_identity_signs_in_as_a_new_empty_account(conn, pair):
    _, person = pair
    erase(conn, person.id)
    row = as_service(conn, "select public.upsert_user_from_identity('custom', %s, %s, true,"
                           " 'Again') as r", (person.subject, person.email))["r"]
    assert row["created"] and row["user"]["id"] != str(person.id)
    assert row["user"]["star_balance"] == 0 and row["user"]["invited_by"] is None
    assert row["user"]["email"] == person.email


def test_a_verified_email_never_links_to_an_erased_account(conn):
    person = sign_in(conn)
    erase(conn, person.id)
    row = as_service(conn, "select public.upsert_user_from_identity('clerk', %s, %s, true) as r",
                     (f"other-{person.tag}", person.email))["r"]
    assert row["created"] and not row["linked"] and row["user"]["id"] != str(person.id)


def test_a_late_payment_success_is_recorded_without_crediting_anyone(conn):
    person = sign_in(conn)
    from tests.money.conftest import begin_purchase
    from tests.money.events import StripePayment

    payment = begin_purchase(conn, person.id, "premium")
    late = StripePayment(uuid.UUID(payment["id"]), int(payment["amount"]))
    erase(conn, person.id)
    event = late.succeeded()
    result = apply_event(conn, event)
    assert result["duplicate"] is False and result["stars_credited"] == 0
    assert one(conn, "select status from public.payments where id = %s",
               (payment["id"],))["status"] == "succeeded"
    assert one(conn, "select count(*) as n from public.stripe_events where id = %s",
               (event["id"],))["n"] == 1
    assert one(conn, "select star_balance from public.users where id = %s",
               (person.id,))["star_balance"] == 0
    # A refund of it afterwards has nothing to take back and says so on the payment.
    refund = apply_event(conn, late.refunded(int(payment["amount"])))
    assert refund["result"] == "refunded" and refund["stars_clawed_back"] == 0
    assert one(conn, "select stars_shortfall from public.payments where id = %s",
               (payment["id"],))["stars_shortfall"] == 36


def test_the_wallet_core_refuses_erased_accounts_but_still_answers_replays(conn):
    person = sign_in(conn)
    first = apply_change(conn, person.id, "STAR", 5, "purchase", f"test:{person.tag}")
    erase(conn, person.id)
    assert apply_change(conn, person.id, "STAR", 5, "purchase", f"test:{person.tag}")[
        "id"] == first["id"]
    assert apply_change(conn, person.id, "COIN", 100, "invite_reward",
                        f"test:{person.tag}:2")["id"] is None
    with pytest.raises(psycopg.Error) as error:
        apply_change(conn, person.id, "STAR", -1, "reading", f"test:{person.tag}:3")
    assert error.value.sqlstate == "MV005"


def test_invite_rewards_resolve_when_the_inviter_or_the_invitee_was_erased(conn):
    inviter, invitee = sign_in(conn), sign_in(conn)
    code = one(conn, "select invite_code from public.users where id = %s",
               (inviter.id,))["invite_code"]
    as_service(conn, "select public.redeem_invite(%s, %s) as r", (invitee.id, code))
    erase(conn, inviter.id)
    pay(conn, invitee)  # the reward goes to nobody, the invite still counts
    invite = one(conn, "select * from public.user_invites where invitee_id = %s", (invitee.id,))
    assert invite["status"] == "accepted"
    assert one(conn, "select coin_balance, total_invites from public.users where id = %s",
               (inviter.id,)) == {"coin_balance": 0, "total_invites": 1}

    inviter2, invitee2 = sign_in(conn), sign_in(conn)
    code2 = one(conn, "select invite_code from public.users where id = %s",
                (inviter2.id,))["invite_code"]
    as_service(conn, "select public.redeem_invite(%s, %s) as r", (invitee2.id, code2))
    from tests.money.conftest import begin_purchase
    from tests.money.events import StripePayment

    payment = begin_purchase(conn, invitee2.id, "starter")
    erase(conn, invitee2.id)
    apply_event(conn, StripePayment(uuid.UUID(payment["id"]), int(payment["amount"])).succeeded())
    assert one(conn, "select coin_balance, total_invites from public.users where id = %s",
               (inviter2.id,)) == {"coin_balance": 100, "total_invites": 1}


def test_a_sign_in_waiting_for_the_erasure_creates_a_new_account(conn, account_db):
    person = sign_in(conn)
    with connect(account_db, row_factory=dict_row) as eraser:
        eraser.execute("begin")
        eraser.execute("set local role service_role")
        eraser.execute("select public.erase_account(%s)", (person.id,))
        with ThreadPoolExecutor(1) as pool:
            signing_in = pool.submit(sign_in_again, account_db, person)
            deadline = time.monotonic() + 10
            while not conn.execute(
                    "select exists (select 1 from pg_stat_activity where wait_event_type = 'Lock'"
                    " and query like '%%upsert_user_from_identity%%') as w").fetchone()["w"]:
                assert time.monotonic() < deadline, "the sign-in never waited for the erasure"
                time.sleep(0.02)
            eraser.execute("commit")
            row = signing_in.result(timeout=10)
    assert row["created"] and row["user"]["id"] != str(person.id)
    assert one(conn, "select name from public.users where id = %s", (person.id,))["name"] is None


def sign_in_again(url: str, person: Person) -> dict[str, Any]:
    with connect(url, row_factory=dict_row) as other:
        return dict(as_service(other, "select public.upsert_user_from_identity('custom', %s, %s,"
                                      " true, 'Back') as r", (person.subject, person.email))["r"])


def test_a_customer_recorded_after_the_cleanup_makes_it_due_again(conn):
    person = sign_in(conn)
    conn.execute("insert into public.stripe_customers (user_id, stripe_customer_id)"
                 " values (%s, %s)", (person.id, f"cus_{person.tag}"))
    erase(conn, person.id)
    due = as_service(conn, "select public.account_cleanups_due(1000) as r")["r"]
    assert {"user_id": str(person.id), "stripe_customer_id": f"cus_{person.tag}"} in due
    assert str(person.id) not in [d["user_id"] for d in as_service(
        conn, "select public.account_cleanups_due(1000) as r")["r"]]  # leased
    done = as_service(conn, "select public.finish_account_cleanup(%s, %s) as r",
                      (person.id, f"cus_{person.tag}"))["r"]
    assert done["done"] is True
    assert one(conn, "select count(*) as n from public.stripe_customers where user_id = %s",
               (person.id,))["n"] == 0

    # A purchase that raced the erasure records a new Customer afterwards.
    as_service(conn, "select public.record_stripe_customer(%s, %s) as r",
               (person.id, f"cus_{person.tag}_late"))
    row = one(conn, "select cleanup_done_at, next_cleanup_at <= now() as due"
                    " from private.account_erasures where user_id = %s", (person.id,))
    assert row == {"cleanup_done_at": None, "due": True}
    failed = as_service(conn, "select public.finish_account_cleanup(%s, %s, 'APIError') as r",
                        (person.id, f"cus_{person.tag}_late"))["r"]
    assert failed == {"done": False, "attempts": 1}
    assert one(conn, "select next_cleanup_at > now() + interval '20 seconds' as later"
                     " from private.account_erasures where user_id = %s", (person.id,))["later"]
