"""The invite journey end to end through the function URLs: a friend redeems the first user's
code and buys stars; Stripe's signed webhook settles the payment, and in the same transaction
the invite is accepted and the inviter's coins arrive (devstack/journey.py's invite step). Then
the same rules through the Stripe stand-in's real deliveries (duplicated and concurrent; a
refund delivered before the success) and the job consumer called by QStash's schedule (expiry)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from devstack.journey import Journey, buy, invite_a_friend, sign_in, sign_in_first_user
from devstack.stripe_standin import StandinControl
from tests.support.local_stack import assert_wallets_consistent, journey_on_local_stack


@pytest.fixture(scope="module")
def journey(tmp_path_factory: Any, database_factory: Any) -> Iterator[Journey]:
    with journey_on_local_stack(tmp_path_factory.mktemp("stack"),
                                database_factory(migrate=False, bootstrap=False)) as journey:
        yield journey


@pytest.fixture(autouse=True)
def wallets_stay_consistent(journey: Journey) -> Iterator[None]:
    yield
    assert_wallets_consistent(journey.info["database_url"])


def test_friend_redeems_and_buys_and_the_inviters_coins_arrive(journey):
    sign_in_first_user(journey)

    invite_a_friend(journey)

    first, second = journey.state["first"], journey.state["second"]
    assert journey.me("first")["coin_balance"] == 100
    assert journey.me("second")["invited_by"] == first["user"]["id"]
    for who in (first, second):
        rows = journey.expect(journey.rest(
            "GET", "user_invites?select=status,coin_reward,is_reward_claimed", who["token"]), 200)
        assert rows == [{"status": "accepted", "coin_reward": 100, "is_reward_claimed": True}]
    summary = journey.rpc("wallet_summary", first["token"])
    assert (summary["total_invites"], summary["pending_invites"], summary["tier"]) == (
        1, 0, "bronze")
    ledger = journey.expect(journey.rest(
        "GET", "wallet_transactions?select=transaction_type,amount,currency",
        first["token"]), 200)
    assert ledger == [{"transaction_type": "invite_reward", "amount": 100, "currency": "COIN"}]


# -- the same rules through the real webhook deliveries and the consumer ------------------
def stripe_control(journey: Journey) -> StandinControl:
    stripe = journey.info["stripe"]
    return StandinControl(stripe["url"], stripe["api_key"])


def invited_pair(journey: Journey, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A host and a guest who has redeemed the host's code, both signed in."""
    sign_in(journey, f"{name}-host", "Host")
    sign_in(journey, f"{name}-guest", "Guest")
    host, guest = journey.state[f"{name}-host"], journey.state[f"{name}-guest"]
    journey.expect(journey.function("redeem-invite", token=guest["token"],
                                    json={"invite_code": host["user"]["invite_code"]}), 200)
    return host, guest


def purchase(journey: Journey, who: dict[str, Any]) -> dict[str, Any]:
    return dict(journey.expect(journey.function(
        "purchase", token=who["token"], idempotency_key=str(uuid.uuid4()),
        json={"package": "starter", "payment_method_id": "pm_card_visa"}), 201))


def rewards(journey: Journey, who: dict[str, Any]) -> list[dict[str, Any]]:
    return list(journey.expect(journey.rest(
        "GET", "wallet_transactions?select=amount,currency&transaction_type=eq.invite_reward",
        who["token"]), 200))


def test_duplicated_concurrent_webhooks_for_the_first_payment_pay_one_reward(journey):
    host, guest = invited_pair(journey, "storm")

    with stripe_control(journey) as control:
        control.configure_delivery(duplicates=4)  # four copies at once, one per sender
        try:
            payment = purchase(journey, guest)
            succeeded = control.wait_for_event("payment_intent.succeeded",
                                               payment["payment_intent_id"], timeout=30)
            assert control.wait_quiet(timeout=30)
        finally:
            control.configure_delivery(duplicates=1)
        [event] = [e for e in control.events("payment_intent.succeeded")
                   if e["id"] == succeeded["id"]]

    answers = [a for a in event["attempts"] if a["status"] == 200]
    assert len({a["copy"] for a in answers}) == 4  # every copy reached the function
    assert sum(not json.loads(a["response_body"])["duplicate"] for a in answers) == 1
    assert rewards(journey, host) == [{"amount": 100, "currency": "COIN"}]
    assert journey.me("storm-host")["total_invites"] == 1
    assert journey.me("storm-guest")["star_balance"] == 5


def test_a_refund_delivered_before_the_success_still_rewards_the_inviter_once(journey):
    host, guest = invited_pair(journey, "refund")

    with stripe_control(journey) as control:
        control.configure_delivery(hold=True)
        try:
            payment = purchase(journey, guest)
            refund = journey.client.post(
                f"{journey.info['stripe']['url']}/v1/refunds",
                data={"payment_intent": payment["payment_intent_id"]},
                headers={"Authorization": f"Bearer {journey.info['stripe']['api_key']}"})
            assert refund.status_code == 200, refund.text
            held = set(control.held())
            [refunded] = [e["id"] for e in control.events("charge.refunded") if e["id"] in held]
            control.release([refunded])  # the refund overtakes the success
            assert control.wait_quiet(timeout=30)
            after_refund = (journey.me("refund-host")["coin_balance"],
                            journey.me("refund-guest")["star_balance"])
            control.release()  # then the success and everything else
            assert control.wait_quiet(timeout=30)
        finally:
            control.configure_delivery()
            control.release()

    assert after_refund == (100, 0)  # settled, rewarded and clawed back in one transaction
    assert rewards(journey, host) == [{"amount": 100, "currency": "COIN"}]
    assert journey.me("refund-guest")["star_balance"] == 0
    [row] = journey.expect(journey.rest("GET", "payments?select=status", guest["token"]), 200)
    assert row == {"status": "refunded"}
    [invite] = journey.expect(journey.rest(
        "GET", "user_invites?select=status,coin_reward", guest["token"]), 200)
    assert invite == {"status": "accepted", "coin_reward": 100}


def test_the_expiry_schedule_expires_a_pending_invite_that_then_never_pays(journey):
    host, guest = invited_pair(journey, "late")
    with psycopg.connect(journey.info["database_url"], autocommit=True) as db:
        db.execute("update public.user_invites set expires_at = now() - interval '1 minute'"
                   " where invitee_id = %s", (guest["user"]["id"],))

    # QStash's expiry schedule calls the job consumer every few seconds on the local stack.
    journey.wait_for("the expiry", lambda: journey.expect(journey.rest(
        "GET", "user_invites?select=status", host["token"]), 200) == [{"status": "expired"}],
        timeout=30)
    qstash = journey.info["qstash"]

    def expired_by_reports() -> int:
        messages = journey.client.get(
            f"{qstash['qstash_url']}/local/messages",
            headers={"Authorization": f"Bearer {qstash['qstash_token']}"}).json()["messages"]
        reports = [json.loads(a["responseBody"]) for m in messages
                   if m["url"] == qstash["job_consumer_url"]
                   for a in m["attempts"] if a["status"] == 200 and a["responseBody"]]
        # The drain's reports have no such field; the expiry task's do.
        return sum(r.get("expired_invites", 0) for r in reports)

    # The run commits before QStash records its answer: wait for the answer, then count.
    journey.wait_for("the expiry's report", lambda: expired_by_reports() > 0, timeout=10)
    assert expired_by_reports() == 1

    buy(journey, "late-guest")

    assert journey.me("late-host")["coin_balance"] == 0
    assert rewards(journey, host) == []
    summary = journey.rpc("wallet_summary", host["token"])
    assert (summary["total_invites"], summary["pending_invites"]) == (0, 0)
