"""The sweep in SQL: which jobs reading_jobs_to_enqueue rings (returns and stamps as rung), in
what order. Each kind of due job next to the open jobs that are not due. SQL alone decides this:
nothing outside it marks a job as rung or gives a stamp back."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.db.conftest import make_user


@pytest.fixture
def db(database_factory: Any) -> Iterator[psycopg.Connection[Any]]:
    """A database of its own: the sweep looks at every job."""
    with psycopg.connect(database_factory(migrate=True), autocommit=True,
                         row_factory=dict_row) as conn:
        yield conn


def add_job(conn: psycopg.Connection[Any], status: str, *, age: int = 60,
            streamed_ago: int | None = None, retry_in: int | None = None,
            started_ago: int | None = None, lease: int = 60) -> uuid.UUID:
    user = make_user(conn)
    row = conn.execute(
        "insert into public.jobs (user_id, dedupe_key, status, payload, attempts, created_at,"
        " enqueued_at, next_retry_at, started_at, visibility_timeout_secs)"
        " values (%s, %s, %s, '{}'::jsonb, %s, now() - make_interval(secs => %s),"
        " now() - make_interval(secs => %s), now() + make_interval(secs => %s),"
        " now() - make_interval(secs => %s), %s) returning id",
        (user, f"test:{uuid.uuid4()}", status, 0 if status == "queued" else 1, age,
         streamed_ago, retry_in, started_ago, lease)).fetchone()
    assert row is not None
    return row["id"]


def sweep(conn: psycopg.Connection[Any], limit: int = 100) -> list[uuid.UUID]:
    row = conn.execute("select public.reading_jobs_to_enqueue(%s, 10, 300) as ids",
                       (limit,)).fetchone()
    assert row is not None
    return [uuid.UUID(i) for i in row["ids"]]


def test_the_sweep_returns_every_kind_of_due_job_oldest_first_and_nothing_else(db):
    due = [
        add_job(db, "queued", age=500),                                  # never rung
        add_job(db, "failed", age=400, retry_in=-1),                     # retry due
        add_job(db, "queued", age=350, streamed_ago=301),                # rung, never claimed
        add_job(db, "processing", age=200, started_ago=61, lease=60),    # lease expired
        add_job(db, "failed", age=100, retry_in=-1, streamed_ago=400),   # due, rung long ago
    ]
    not_due = [
        add_job(db, "queued", age=5),                                    # within the grace
        add_job(db, "queued", age=600, streamed_ago=30),                 # just rung
        add_job(db, "failed", age=600, retry_in=60),                     # retry not yet due
        add_job(db, "failed", age=600, retry_in=-1, streamed_ago=30),    # rung just now
        add_job(db, "processing", age=600, started_ago=30, lease=60),    # live lease
        add_job(db, "processing", age=600, started_ago=61, lease=60, streamed_ago=30),
        add_job(db, "succeeded", age=600),
        add_job(db, "dlq", age=600),
    ]

    assert sweep(db) == due
    marked = db.execute("select id from public.jobs where enqueued_at > now() - interval '1 s'"
                        " and id = any(%s)", (due + not_due,)).fetchall()
    assert {r["id"] for r in marked} == set(due)
    assert sweep(db) == []  # stamped: left alone for the stale interval


def test_the_sweep_returns_at_most_its_limit_the_oldest_across_kinds(db):
    jobs = [add_job(db, "queued", age=900 - 10 * n) for n in range(4)]
    jobs += [add_job(db, "failed", age=895 - 10 * n, retry_in=-1) for n in range(4)]
    oldest_first = sorted(jobs, key=lambda j: db.execute(
        "select created_at from public.jobs where id = %s", (j,)).fetchone()["created_at"])

    assert sweep(db, limit=3) == oldest_first[:3]
    assert sweep(db, limit=0) == []
    assert sweep(db, limit=100) == oldest_first[3:]


def test_the_sweep_skips_a_job_another_transaction_holds(db, database_factory):
    held, free = add_job(db, "queued", age=500), add_job(db, "queued", age=400)
    locked, release = threading.Event(), threading.Event()
    url = db.info.dsn

    def hold() -> None:
        with psycopg.connect(url) as other, other.transaction():
            other.execute("select 1 from public.jobs where id = %s for update", (held,))
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        assert sweep(db) == [free]
    finally:
        release.set()
        holder.join()
    assert sweep(db) == [held]


def test_the_sweeps_stamp_is_a_heap_only_update_on_pages_filled_by_inserts(db):
    """Pages of jobs keep room for updates (fillfactor): stamping a job as rung changes no
    indexed column, so it writes no entry into the table's indexes (at a million jobs those
    writes made the sweep grow with the table). The due jobs are spread among others, as jobs
    that need the sweep are in a busy table."""
    user = make_user(db)
    # One set-based insert fills its pages as far as the fillfactor lets it, like a busy table;
    # every 20th job is old enough to be due, the others are within the grace.
    db.execute(
        "insert into public.jobs (user_id, dedupe_key, status, payload, attempts, created_at)"
        " select %s, 'fill:' || g, 'queued', '{}'::jsonb, 0,"
        " now() - case when g %% 20 = 0 then interval '1 hour' else interval '0' end"
        " from generate_series(1, 2000) g", (user,))
    with db.transaction():
        rung = sweep(db, limit=100)
        row = db.execute(
            "select pg_stat_get_xact_tuples_updated('public.jobs'::regclass) as updated,"
            " pg_stat_get_xact_tuples_hot_updated('public.jobs'::regclass) as hot").fetchone()
    assert row is not None
    assert len(rung) == 100
    assert row["updated"] == 100
    assert row["hot"] == 100
