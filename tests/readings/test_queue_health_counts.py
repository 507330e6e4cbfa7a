"""queue_health's counts by status come from per-status totals plus a log of deltas that the job
writers append to: after every kind of transition, under concurrent writers and folds, and
whether or not the caller gets to fold, they equal `count(*) ... group by status` exactly."""

from __future__ import annotations

import json
import random
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from ops.migrate import MIGRATIONS_DIR, discover, migrate_up
from tests.db.conftest import make_user, one

MIGRATION = "20261203015000"
STATUSES = ("queued", "processing", "succeeded", "failed", "dlq", "canceled")
SNAPSHOT_FIGURES = """
  select s.status::text as status,
         coalesce((select t.jobs from private.job_status_totals t where t.status = s.status), 0)
         + coalesce((select sum(d.delta) from private.job_status_deltas d
                      where d.status = s.status), 0)::bigint as n
    from unnest(enum_range(null::public.job_status)) s (status)
"""
FOLD_LOCK = "select pg_advisory_xact_lock(hashtextextended('private.fold_job_status_deltas', 0))"


def as_service(conn: psycopg.Connection[Any], sql: str, params: Any = ()) -> Any:
    with conn.transaction():
        conn.execute("set local role service_role")
        return one(conn, sql, params)


def truth(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute("select status::text, count(*) as n from public.jobs group by status")
    return {s: 0 for s in STATUSES} | {r["status"]: r["n"] for r in rows.fetchall()}


def logged(conn: psycopg.Connection[Any]) -> int:
    return one(conn, "select count(*) as n from private.job_status_deltas")["n"]


def assert_exact(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """queue_health (as the consumer calls it) and the counts of every status match the rows."""
    health = as_service(conn, "select * from public.queue_health()")
    expected = truth(conn)
    assert {k: health[k] for k in ("queued", "processing", "failed", "dead_letters")} == {
        "queued": expected["queued"], "processing": expected["processing"],
        "failed": expected["failed"], "dead_letters": expected["dlq"]}
    assert health["depth"] == expected["queued"] + expected["processing"] + expected["failed"]
    counts = conn.execute("select status::text, jobs from private.job_status_counts()")
    assert {r["status"]: r["jobs"] for r in counts.fetchall()} == expected
    return dict(health)


def create(conn: psycopg.Connection[Any], user: uuid.UUID) -> uuid.UUID:
    answer = as_service(conn, "select public.create_reading_job(%s, %s, 'h', 'ความรัก', 3,"
                        " 'th', 1000) as r", (user, uuid.uuid4().hex))["r"]
    return uuid.UUID(answer["job_id"])


def claim(conn: psycopg.Connection[Any], *jobs: uuid.UUID) -> list[str]:
    answer = as_service(conn, "select public.claim_reading_jobs(%s::uuid[], 'w', 60) as r",
                        (list(jobs),))["r"]
    return [c["outcome"] for c in answer]


def attempt_of(conn: psycopg.Connection[Any], job: uuid.UUID) -> int:
    return one(conn, "select attempts from public.jobs where id = %s", (job,))["attempts"]


def finish(conn: psycopg.Connection[Any], job: uuid.UUID, *, error: bool = False,
           retryable: bool = True) -> str:
    result: dict[str, Any] = {"job_id": str(job), "attempt": attempt_of(conn, job)}
    if error:
        result |= {"kind": "error", "error": "boom", "error_code": "x", "retryable": retryable}
    else:
        result |= {"kind": "reading", "question_analysis": {}, "processing_time_ms": 5,
                   "tarot_reading": {"summary": "s", "advice": "a"}, "prompt_version": "p",
                   "schema_version": "1"}
    # No backoff, so a retried job is claimable again at once.
    answer = as_service(conn, "select public.finish_reading_jobs(%s::jsonb, 0, 0) as r",
                        (json.dumps([result]),))["r"]
    return str(answer[0]["outcome"])


def status(conn: psycopg.Connection[Any], job: uuid.UUID) -> str:
    return str(one(conn, "select status::text as s from public.jobs where id = %s", (job,))["s"])


def test_the_figures_are_exact_after_every_kind_of_transition(sql):
    user, other = make_user(sql, stars=1000), make_user(sql, stars=1000)
    jobs = [create(sql, user) for _ in range(5)] + [create(sql, other) for _ in range(3)]
    assert assert_exact(sql)["queued"] >= 8

    assert claim(sql, *jobs[:4]) == ["claimed"] * 4
    assert_exact(sql)
    assert finish(sql, jobs[0]) == "succeeded"
    assert_exact(sql)
    assert finish(sql, jobs[1], error=True) == "retry"
    assert status(sql, jobs[1]) == "failed"
    assert_exact(sql)
    assert claim(sql, jobs[1]) == ["claimed"]
    assert finish(sql, jobs[1], error=True, retryable=False) == "dead_lettered"
    assert status(sql, jobs[1]) == "dlq"
    assert_exact(sql)

    with sql.transaction():  # the operator's replay of a dead letter
        sql.execute("set local role service_role")
        sql.execute("select public.admin_replay_job(%s, 2)", (jobs[1],))
    assert status(sql, jobs[1]) == "queued"
    assert_exact(sql)

    # Erasure cancels the user's open jobs (queued, processing, failed).
    assert finish(sql, jobs[2], error=True) == "retry"
    as_service(sql, "select public.erase_account(%s, 'self') as r", (user,))
    assert {status(sql, j) for j in jobs[1:5]} == {"canceled"}
    assert_exact(sql)

    # Deleting a user deletes their jobs (the foreign key cascades), and a job is deleted.
    gone = make_user(sql)
    for n, state in enumerate(["queued", "failed", "dlq", "succeeded"]):
        sql.execute("insert into public.jobs (user_id, dedupe_key, status, payload)"
                    " values (%s, %s, %s, '{}'::jsonb)", (gone, f"gone:{gone}:{n}", state))
    assert_exact(sql)
    sql.execute("delete from public.jobs where dedupe_key = %s", (f"gone:{gone}:0",))
    assert_exact(sql)
    sql.execute("delete from public.users where id = %s", (gone,))
    assert_exact(sql)


def test_an_update_that_keeps_the_status_logs_nothing(sql):
    job = create(sql, make_user(sql, stars=100))
    assert_exact(sql)  # folded: the log is empty
    sql.execute("update public.jobs set enqueued_at = now(), last_error = 'x' where id = %s",
                (job,))
    assert logged(sql) == 0
    sql.execute("update public.jobs set status = 'processing' where id = %s", (job,))
    assert logged(sql) == 2  # one status less, one more
    sql.execute("update public.jobs set status = 'processing', attempts = 1 where id = %s",
                (job,))
    assert logged(sql) == 2
    assert_exact(sql)


def test_the_fold_is_idempotent(sql):
    create(sql, make_user(sql, stars=100))
    assert logged(sql) > 0
    assert one(sql, "select private.fold_job_status_deltas() as f")["f"] is True
    totals = sql.execute("select status, jobs from private.job_status_totals order by status")
    before = totals.fetchall()
    assert logged(sql) == 0
    assert one(sql, "select private.fold_job_status_deltas() as f")["f"] is True
    after = sql.execute("select status, jobs from private.job_status_totals order by status")
    assert after.fetchall() == before
    assert_exact(sql)


def test_a_caller_that_cannot_fold_reads_the_totals_plus_the_log(sql, readings_db):
    create(sql, make_user(sql, stars=100))
    unfolded = logged(sql)
    assert unfolded > 0
    with psycopg.connect(readings_db, row_factory=dict_row) as folder:
        folder.execute(FOLD_LOCK)  # another fold is under way
        assert one(sql, "select private.fold_job_status_deltas() as f")["f"] is False
        assert_exact(sql)
        assert logged(sql) == unfolded
        folder.rollback()
    assert_exact(sql)
    assert logged(sql) == 0


def test_jobs_cannot_be_truncated_so_no_truncate_escapes_the_log(sql):
    create(sql, make_user(sql, stars=100))
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        sql.execute("truncate public.jobs")  # referenced by the ledger and the attempts
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        sql.execute("truncate public.jobs cascade")  # the ledger refuses TRUNCATE
    assert_exact(sql)


def test_concurrent_writers_and_folds_leave_exact_figures(sql, readings_db):
    """Writers create, claim and finish jobs (success, retry, dead letter) while other
    connections fold through queue_health; no writer fails and the figures end exact."""
    writers, rounds = 4, 12
    users = [make_user(sql, stars=1000) for _ in range(writers)]
    done = threading.Event()
    errors: list[BaseException] = []
    folded = [0]
    mismatches: list[Any] = []

    def write(user: uuid.UUID, seed: int) -> None:
        rng = random.Random(seed)
        try:
            with psycopg.connect(readings_db, autocommit=True, row_factory=dict_row) as conn:
                for _ in range(rounds):
                    jobs = [create(conn, user) for _ in range(2)]
                    claim(conn, *jobs)
                    for job in jobs:
                        finish(conn, job, error=rng.random() < 0.5,
                               retryable=rng.random() < 0.5)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    def fold() -> None:
        try:
            with psycopg.connect(readings_db, autocommit=True, row_factory=dict_row) as conn:
                while not done.is_set():
                    as_service(conn, "select * from public.queue_health()")
                    folded[0] += 1
                    # Mid-run, in one snapshot: totals + log are the rows' counts.
                    with conn.transaction():
                        conn.execute("set transaction isolation level repeatable read")
                        seen = conn.execute(SNAPSHOT_FIGURES).fetchall()
                        if {r["status"]: r["n"] for r in seen} != truth(conn):
                            mismatches.append(seen)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(u, n)) for n, u in enumerate(users)]
    folders = [threading.Thread(target=fold) for _ in range(2)]
    for t in folders + threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    for t in folders:
        t.join(timeout=30)

    assert errors == []
    assert folded[0] > 0
    assert mismatches == []
    assert all(not t.is_alive() for t in threads + folders)
    assert sum(truth(sql).values()) >= writers * rounds * 2
    assert_exact(sql)


def test_the_migration_counts_the_jobs_already_there(database_factory, tmp_path: Path):
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for migration in discover():
        if migration.version < MIGRATION:
            shutil.copy2(migration.path, earlier / migration.path.name)
    url = database_factory(migrate=False)
    migrate_up(url, earlier)
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        user = make_user(conn)
        for n, state in enumerate(["queued", "queued", "processing", "failed", "dlq",
                                   "succeeded", "canceled"]):
            conn.execute("insert into public.jobs (user_id, dedupe_key, status, payload)"
                         " values (%s, %s, %s, '{}'::jsonb)", (user, f"old:{n}", state))
        assert MIGRATION in migrate_up(url, MIGRATIONS_DIR)
        assert logged(conn) == 0
        assert_exact(conn)


def test_the_consumers_call_over_rest_folds_and_reports_exact_figures(database, sql):
    """The consumer POSTs the RPC as the service role: volatile, so run read-write."""
    from shared.db import execute

    create(sql, make_user(sql, stars=100))
    assert logged(sql) > 0
    rows = execute(database.service.rpc("queue_health", {})).data
    expected = truth(sql)
    assert (rows[0]["queued"], rows[0]["dead_letters"]) == (expected["queued"], expected["dlq"])
    assert logged(sql) == 0
