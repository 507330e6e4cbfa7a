"""The invite journey end to end through the function URLs: a friend redeems the first user's
code and buys stars; Stripe's signed webhook settles the payment, and in the same transaction
the invite is accepted and the inviter's coins arrive (devstack/journey.py's invite step)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devstack.journey import Journey, invite_a_friend, sign_in_first_user
from tests.support.local_stack import journey_on_local_stack


@pytest.fixture(scope="module")
def journey(tmp_path_factory: Any, database_factory: Any) -> Iterator[Journey]:
    with journey_on_local_stack(tmp_path_factory.mktemp("stack"),
                                database_factory(migrate=False, bootstrap=False)) as journey:
        yield journey


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
