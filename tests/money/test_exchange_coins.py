"""exchange_coins through the REST gateway (the app's path): whole stars at the database's rate,
exactly once per idempotency key, never more coins than the user holds, even under a race."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
from psycopg.rows import dict_row

from tests.money.conftest import credit
from tests.money.stack import MoneyStack, User, api_key


def user_with_coins(stack: MoneyStack, coins: int) -> User:
    user = stack.sign_in()
    with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as db:
        credit(db, uuid.UUID(user.id), "COIN", coins)
    return user


def exchange(http: httpx.Client, stack: MoneyStack, user: User, coins: int,
             key: str | None = None) -> httpx.Response:
    return http.post(f"{stack.rest_url}/rpc/exchange_coins",
                     json={"coins": coins, "idempotency_key": key or str(uuid.uuid4())},
                     headers={"apikey": api_key("anon"), "Authorization": f"Bearer {user.token}"})


def test_32_concurrent_exchanges_of_100_coins_from_500_succeed_exactly_5_times(stack: MoneyStack):
    user = user_with_coins(stack, 500)

    def attempt(_: int) -> httpx.Response:
        with httpx.Client(timeout=30) as http:
            return exchange(http, stack, user, 100)

    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(attempt, range(32)))

    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(ok) == 5
    assert {(r.status_code, r.json()["code"]) for r in refused} == {(400, "MV002")}
    assert all("insufficient_coins" in r.json()["message"] for r in refused)
    assert sorted(r.json()["coin_balance"] for r in ok) == [0, 100, 200, 300, 400]
    assert stack.me(user) == {"star_balance": 5, "coin_balance": 0}
    with psycopg.connect(stack.database_url) as db:
        assert db.execute("select * from public.wallet_audit()").fetchall() == []


def test_coins_that_are_not_whole_stars_are_refused(stack: MoneyStack):
    user = user_with_coins(stack, 500)
    for coins in (150, 0, -100):
        response = exchange(stack.http, stack, user, coins)
        assert response.status_code == 400
        assert (response.json()["code"], response.json()["message"]) == (
            "MV003", "not_a_multiple_of_rate")
    too_many = exchange(stack.http, stack, user, 600)
    assert (too_many.status_code, too_many.json()["message"]) == (400, "insufficient_coins")
    assert stack.me(user) == {"star_balance": 0, "coin_balance": 500}


def test_a_replayed_key_returns_the_first_result_and_another_amount_is_refused(stack: MoneyStack):
    user = user_with_coins(stack, 500)
    key = str(uuid.uuid4())
    first = exchange(stack.http, stack, user, 200, key)
    again = exchange(stack.http, stack, user, 200, key)
    other = exchange(stack.http, stack, user, 300, key)

    assert first.status_code == 200 and again.json() == first.json()
    assert first.json() == {"coins_spent": 200, "stars_received": 2, "star_balance": 2,
                            "coin_balance": 300}
    assert (other.status_code, other.json()["code"]) == (400, "MV004")
    assert stack.me(user) == {"star_balance": 2, "coin_balance": 300}


def test_wallet_summary_shows_the_callers_wallet_only(stack: MoneyStack):
    user = user_with_coins(stack, 300)
    summary = stack.rest("POST", "rpc/wallet_summary", user, json={})
    assert summary.status_code == 200
    body = summary.json()
    assert (body["user_id"], body["coin_balance"], body["star_balance"], body["tier"],
            body["total_invites"], body["pending_invites"]) == (user.id, 300, 0, "bronze", 0, 0)
    anonymous = stack.http.post(f"{stack.rest_url}/rpc/wallet_summary", json={},
                                headers={"apikey": api_key("anon")})
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "42501")
