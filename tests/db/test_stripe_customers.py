"""record_stripe_customer: one Customer per user, whatever the concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

from tests.db.conftest import connect, make_user, one


def test_concurrent_recordings_of_the_same_customer_all_return_it(
        db: psycopg.Connection[Any], migrated_db: str) -> None:
    for attempt in range(5):  # the race needs the inserts to overlap; repeat to make it likely
        user_id = make_user(db)
        customer = f"cus_race_{attempt}_{user_id.hex[:8]}"
        start = threading.Barrier(12)

        def record(_: int, user: object = user_id, cus: str = customer,
                   barrier: threading.Barrier = start) -> str:
            with connect(migrated_db) as conn:
                conn.execute("set role service_role")
                barrier.wait()
                row = conn.execute("select public.record_stripe_customer(%s, %s)",
                                   (user, cus)).fetchone()
                assert row is not None
                return str(row[0])

        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(record, range(12)))
        assert results == [customer] * 12
        assert one(db, "select count(*) as n from public.stripe_customers where user_id = %s",
                   (user_id,))["n"] == 1


def test_a_user_keeps_the_first_customer_recorded(db: psycopg.Connection[Any]) -> None:
    user_id = make_user(db)
    first = one(db, "select public.record_stripe_customer(%s, %s) as c", (user_id, "cus_first"))
    again = one(db, "select public.record_stripe_customer(%s, %s) as c", (user_id, "cus_other"))
    assert (first["c"], again["c"]) == ("cus_first", "cus_first")
