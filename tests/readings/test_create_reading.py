"""create-reading through the REST gateway: one SQL transaction charges, draws and queues."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pydantic import SecretStr

from shared.errors import (
    IdempotencyKeyReused,
    InsufficientStars,
    TooManyPendingReadings,
    ValidationFailed,
)
from shared.queue import ReadingQueue
from shared.readings import CreateReadingRequest, ReadingService, check_idempotency_key
from tests.readings.conftest import JWT_SECRET, UPSTASH_TOKEN, api_key, ask, make_user, user_token


def ledger(sql, user_id):
    return sql.execute(
        "select transaction_type::text as type, amount, dedupe_key from public.wallet_transactions"
        " where user_id = %s and currency = 'STAR' order by seq", (user_id,)).fetchall()


def balance(sql, user_id) -> int:
    return sql.execute("select star_balance from public.users where id = %s",
                       (user_id,)).fetchone()["star_balance"]


def test_a_reading_charges_its_price_draws_distinct_cards_and_rings_the_stream(
        sql, service, queue):
    user = make_user(sql, stars=5)

    response = ask(service, user, "ความรักของฉันจะเป็นอย่างไร", card_count=3)

    assert (response.status, response.cost_stars, response.star_balance) == ("queued", 1, 4)
    assert [c.position for c in response.cards] == [0, 1, 2]
    assert len({c.card_id for c in response.cards}) == 3
    job = sql.execute("select * from public.jobs where id = %s", (response.job_id,)).fetchone()
    assert job["status"] == "queued" and job["cost_stars"] == 1 and job["user_id"] == user
    assert job["payload"]["cards"] == [c.model_dump() for c in response.cards]
    assert job["payload"]["question"] == "ความรักของฉันจะเป็นอย่างไร"
    # Ringing the doorbell tells SQL nothing: only the sweep stamps when it rang.
    assert job["enqueued_at"] is None
    assert ledger(sql, user)[-1] == {"type": "reading", "amount": -1,
                                     "dedupe_key": f"reading:{response.job_id}"}
    entries = queue.read("reader", 10)
    assert [e.job_id for e in entries] == [str(response.job_id)]


def test_five_cards_cost_two_stars_and_names_follow_the_locale(sql, service):
    user = make_user(sql, stars=2)

    response = ask(service, user, "Will I get the job?", card_count=5, locale="en")

    assert (response.cost_stars, response.star_balance, len(response.cards)) == (2, 0, 5)
    names = {r["id"]: r["name_en"] for r in sql.execute(
        "select id, name_en from public.tarot_cards").fetchall()}
    assert all(c.name == names[c.card_id] for c in response.cards)


def test_a_replay_returns_the_first_response_and_charges_nothing(sql, service, queue):
    user = make_user(sql, stars=3)
    first = ask(service, user, "เงินเดือนหน้า", key="key-1")

    again = ask(service, user, "  เงินเดือนหน้า ", key="key-1")

    assert again == first
    assert balance(sql, user) == 2
    assert len(ledger(sql, user)) == 2  # the purchase and one reading
    assert len(queue.read("reader", 10)) == 1


def test_the_same_key_with_another_request_is_refused(sql, service):
    user = make_user(sql, stars=3)
    ask(service, user, "คำถามแรก", key="shared-key")

    with pytest.raises(IdempotencyKeyReused):
        ask(service, user, "คำถามอื่น", key="shared-key")
    with pytest.raises(IdempotencyKeyReused):
        ask(service, user, "คำถามแรก", key="shared-key", card_count=5)
    assert balance(sql, user) == 2


def test_keys_belong_to_their_user(sql, service):
    alice, bob = make_user(sql, stars=1), make_user(sql, stars=1)

    a = ask(service, alice, "same question", key="same-key")
    b = ask(service, bob, "same question", key="same-key")

    assert a.job_id != b.job_id
    assert balance(sql, alice) == balance(sql, bob) == 0


def test_without_enough_stars_nothing_is_written(sql, service, queue):
    user = make_user(sql, stars=1)

    with pytest.raises(InsufficientStars):
        ask(service, user, card_count=5)

    assert sql.execute("select count(*) as n from public.jobs where user_id = %s",
                       (user,)).fetchone()["n"] == 0
    assert balance(sql, user) == 1
    assert queue.read("reader", 10) == []


def test_open_readings_are_capped_per_user(sql, database, queue):
    service = ReadingService(database=database, queue=queue, waker=None, max_pending=2)
    user = make_user(sql, stars=5)
    ask(service, user)
    ask(service, user)

    with pytest.raises(TooManyPendingReadings):
        ask(service, user)

    sql.execute("update public.jobs set status = 'succeeded' where user_id = %s and id ="
                " (select id from public.jobs where user_id = %s limit 1)", (user, user))
    ask(service, user)
    assert balance(sql, user) == 2


def test_the_request_succeeds_when_redis_is_unreachable(sql, database, redis_client):
    from shared.redis import build_redis

    dead = build_redis("http://127.0.0.1:9", "nobody")
    service = ReadingService(database=database, queue=ReadingQueue(dead), waker=None,
                             max_pending=10)
    user = make_user(sql, stars=1)

    response = ask(service, user)

    job = sql.execute("select status, enqueued_at from public.jobs where id = %s",
                      (response.job_id,)).fetchone()
    assert job == {"status": "queued", "enqueued_at": None}
    assert balance(sql, user) == 0
    dead.close()


def test_fifty_concurrent_requests_by_a_user_who_can_pay_for_ten_make_ten_jobs(sql, service):
    user = make_user(sql, stars=10)

    def attempt(i: int) -> str:
        try:
            ask(service, user, f"คำถามที่ {i}", key=f"distinct-{i}")
            return "created"
        except InsufficientStars:
            return "refused"

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(attempt, range(50)))

    assert outcomes.count("created") == 10 and outcomes.count("refused") == 40
    assert sql.execute("select count(*) as n from public.jobs where user_id = %s",
                       (user,)).fetchone()["n"] == 10
    assert balance(sql, user) == 0
    assert sql.execute("select * from public.wallet_audit()").fetchall() == []


def test_twenty_concurrent_replays_make_one_job_and_one_charge(sql, service):
    user = make_user(sql, stars=5)

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda _: ask(service, user, "ซ้ำ", key="one-key"), range(20)))

    assert len({r.job_id for r in responses}) == 1
    assert len({r.model_dump_json() for r in responses}) == 1
    assert balance(sql, user) == 4
    assert [row["type"] for row in ledger(sql, user)] == ["purchase", "reading"]


def test_the_draw_covers_the_deck_and_both_orientations(sql):
    # The argument mentions d.n so that PostgreSQL draws once per row, not once in all.
    rows = sql.execute(
        "select c ->> 'card_id' as card, c ->> 'orientation' as side, d.n"
        " from generate_series(1, 300) as d (n),"
        " lateral jsonb_array_elements(private.draw_cards(5 + 0 * d.n, 'th')) as c").fetchall()

    assert len(rows) == 1500
    per_draw: dict[int, set[str]] = {}
    for row in rows:
        per_draw.setdefault(row["n"], set()).add(row["card"])
    assert all(len(cards) == 5 for cards in per_draw.values())
    # 300 draws miss some card with probability below 78 * (73/78)^300 ≈ 2e-7.
    assert len({r["card"] for r in rows}) == 78
    reversed_share = sum(r["side"] == "reversed" for r in rows) / len(rows)
    assert 0.4 < reversed_share < 0.6


@pytest.mark.parametrize("question", ["", "   ", "ก" * 501])
def test_questions_must_have_one_to_five_hundred_characters(question):
    with pytest.raises(ValueError):
        CreateReadingRequest(question=question, card_count=3)


@pytest.mark.parametrize("key", [None, "", "x" * 256, "ключ", "tab\there", "key\n"])
def test_idempotency_keys_are_one_to_255_printable_ascii_characters(key):
    with pytest.raises(ValidationFailed):
        check_idempotency_key(key)


@pytest.mark.parametrize("key", ["k", "x" * 255, "order 42 / retry #1", "~!@{}"])
def test_keys_of_one_to_255_printable_ascii_characters_are_accepted_end_to_end(sql, service, key):
    user = make_user(sql, stars=1)

    first = ask(service, user, key=key)

    assert check_idempotency_key(key) == key
    assert ask(service, user, key=key) == first
    assert balance(sql, user) == 0


def test_the_request_hash_ignores_surrounding_white_space():
    a = CreateReadingRequest(question=" ดวง ", card_count=3)
    b = CreateReadingRequest(question="ดวง", card_count=3, locale="th")
    c = CreateReadingRequest(question="ดวง", card_count=5)
    assert a.request_hash() == b.request_hash() != c.request_hash()


def test_the_service_key_is_required_to_create_jobs(sql, gateway):
    from postgrest.exceptions import APIError

    from shared.db import Database
    from tests.readings.conftest import api_key, user_token

    user = make_user(sql, stars=1)
    db = Database(gateway.url, anon_key=SecretStr(api_key("anon")),
                  service_role_key=SecretStr(api_key("service_role")))
    params: dict[str, Any] = {"p_user_id": str(user), "p_idempotency_key": "k", "p_request_hash": "h",
              "p_question": "q", "p_card_count": 3}
    try:
        with pytest.raises(APIError):
            db.for_user(user_token(user)).rpc("create_reading_job", params).execute()
    finally:
        db.close()
    assert balance(sql, user) == 1


def test_the_shared_rate_limit_applies_before_anything_is_charged(sql, database, queue,
                                                                   redis_client, gateway, bridge,
                                                                   monkeypatch):
    from functions.create_reading.handler import handler
    from shared import bootstrap
    from shared.access_tokens import set_erased_check
    from shared.ratelimit import RateLimiter
    from tests.support.stack import reset_containers

    for name, value in {"SUPABASE_URL": gateway.url, "SUPABASE_ANON_KEY": api_key("anon"),
                        "SUPABASE_SERVICE_ROLE_KEY": api_key("service_role"),
                        "SUPABASE_JWT_SECRET": JWT_SECRET, "UPSTASH_REDIS_REST_URL": bridge.url,
                        "UPSTASH_REDIS_REST_TOKEN": UPSTASH_TOKEN}.items():
        monkeypatch.setenv(name, value)
    reset_containers()
    set_erased_check(lambda user: False)
    bootstrap.override(
        database=database,
        rate_limiter=RateLimiter(redis_client, max_requests=2, window_seconds=60,
                                 prefix=f"test:{queue.stream}"),
        readings=ReadingService(database=database, queue=queue, waker=None, max_pending=10))
    user = make_user(sql, stars=5)

    def create(key: str) -> dict[str, Any]:
        return handler({"requestContext": {"http": {"method": "POST"}}, "rawPath": "/",
                        "headers": {"authorization": f"Bearer {user_token(user)}",
                                    "idempotency-key": key},
                        "body": '{"question": "งานใหม่จะดีไหม", "card_count": 3}'}, None)

    try:
        statuses = [create(key)["statusCode"] for key in ("k1", "k2")]
        limited = create("k3")
    finally:
        set_erased_check(None)
        reset_containers()

    assert statuses == [202, 202]
    assert limited["statusCode"] == 429 and '"rate_limited"' in limited["body"]
    assert int(limited["headers"]["retry-after"]) >= 1
    assert balance(sql, user) == 3
