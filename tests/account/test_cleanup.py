"""The work after an erasure's commit: Stripe (cards detached, Customer deleted) and Redis (the
user's keys). Idempotent; when Stripe is down the deletion still answers 202 and the job
consumer's sweep finishes the cleanup later."""

from __future__ import annotations

import socket
import time
import uuid

import psycopg
import pytest
import stripe
from psycopg.rows import dict_row

from shared.access_tokens import AuthenticatedUser, authenticate
from shared.errors import Unauthorized
from shared.http import FunctionUrlRequest
from tests.account.app import buy, delete_account, save_card, sign_in
from tests.money.stack import STRIPE_KEY, MoneyStack


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def erasure(stack: MoneyStack, user_id: str) -> dict:
    with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as conn:
        row = conn.execute("select cleanup_done_at, cleanup_attempts, cleanup_error"
                           " from private.account_erasures where user_id = %s",
                           (user_id,)).fetchone()
    assert row is not None
    return dict(row)


def user_keys(user_id: str) -> list[str]:
    from shared.bootstrap import services
    from shared.ratelimit import KEY_PREFIX

    _, keys = services().redis.scan(0, match=f"{KEY_PREFIX}:*:{user_id}:*", count=10_000)
    return list(keys)


def test_the_users_redis_keys_are_dropped(stack: MoneyStack):
    user = sign_in(stack)
    buy(stack, user, "starter", confirm=False)
    assert user_keys(user.id)
    assert delete_account(stack, user).status_code == 202
    assert user_keys(user.id) == []


def test_with_stripe_down_the_sweep_of_the_job_consumer_finishes_the_cleanup(stack: MoneyStack):
    from shared import bootstrap
    from shared.account_cleanup import AccountCleanup

    user = sign_in(stack)
    buy(stack, user)
    card = save_card(stack, user)
    customer = stack.rest("GET", "stripe_customers?select=stripe_customer_id", user).json()[0][
        "stripe_customer_id"]
    down = stripe.StripeClient(STRIPE_KEY, base_addresses={
        "api": f"http://127.0.0.1:{closed_port()}"}, max_network_retries=0)
    # The account service is built again from this cleanup.
    bootstrap.override(account_cleanup=AccountCleanup(
        database=bootstrap.services().database, stripe=down, redis=None))
    try:
        response = delete_account(stack, user)
    finally:
        bootstrap.reset()
    assert response.status_code == 202, response.text
    state = erasure(stack, user.id)
    assert state["cleanup_done_at"] is None and state["cleanup_attempts"] == 1
    assert state["cleanup_error"] == "APIConnectionError"
    assert stack.stripe.v1.customers.retrieve(customer).to_dict().get("deleted") is None

    # Not due yet: a consumer run now leaves it alone.
    consumer = bootstrap.services().job_consumer
    consumer.run(deadline=time.monotonic() + 20, max_jobs=1)
    assert erasure(stack, user.id)["cleanup_done_at"] is None
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute("update private.account_erasures set next_cleanup_at = now()"
                     " where user_id = %s", (user.id,))
    consumer.run(deadline=time.monotonic() + 20, max_jobs=1)
    assert erasure(stack, user.id)["cleanup_done_at"] is not None
    assert stack.stripe.v1.customers.retrieve(customer).to_dict().get("deleted") is True
    assert stack.stripe.v1.payment_methods.retrieve(card).customer is None
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        assert conn.execute("select count(*) from public.stripe_customers where user_id = %s",
                            (user.id,)).fetchone() == (0,)


def test_a_cleanup_run_twice_does_the_same(stack: MoneyStack):
    from shared.account_cleanup import AccountCleanup
    from shared.bootstrap import services

    user = sign_in(stack)
    buy(stack, user, "starter")
    customer = stack.rest("GET", "stripe_customers?select=stripe_customer_id", user).json()[0][
        "stripe_customer_id"]
    assert delete_account(stack, user).status_code == 202
    cleanup = AccountCleanup(database=services().database, stripe=stack.stripe, redis=None)
    assert cleanup.run(user.id, customer) is True
    assert erasure(stack, user.id)["cleanup_attempts"] == 0


def _request(token: str) -> FunctionUrlRequest:
    return FunctionUrlRequest.from_event({"requestContext": {"http": {"method": "GET"},
                                                             "requestId": "r"},
                                          "headers": {"Authorization": f"Bearer {token}"}})


def test_authenticate_refuses_the_token_of_an_erased_account(monkeypatch):
    from shared.access_tokens import mint_access_token
    from shared.settings import Settings

    secret = "account-tests-jwt-secret-long-enough-1234"
    settings = Settings(supabase_url="http://127.0.0.1:9", supabase_anon_key="a",
                        supabase_service_role_key="s", supabase_jwt_secret=secret)
    token = mint_access_token(uuid.uuid4(), secret=secret).token
    asked: list[AuthenticatedUser] = []

    def erased(user: AuthenticatedUser) -> bool:
        asked.append(user)
        return True

    monkeypatch.setattr("shared.access_tokens._erased_check", erased)
    with pytest.raises(Unauthorized):
        authenticate(_request(token), settings)
    assert authenticate(_request(token), settings, allow_erased=True).access_token == token
    assert len(asked) == 1
