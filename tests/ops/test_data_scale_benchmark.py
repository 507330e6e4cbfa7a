"""The data-scale benchmark's fill keeps the ledger invariants and every path it measures runs
against the current migrations, with plans it can read (so the benchmark cannot rot silently)."""

from __future__ import annotations

from typing import Any

from benchmarks._scale_fill import DUE_JOBS, POWER_INVITES, POWER_USERS, fill
from benchmarks._scale_measure import connect, run_explained, run_timed
from benchmarks._scale_paths import admin_paths, all_paths, probe_ids

SMALLEST = POWER_USERS + sum(POWER_INVITES) + DUE_JOBS + 100


def test_the_fill_is_a_healthy_ledger_and_every_path_runs_with_a_readable_plan(database_factory):
    url = database_factory(migrate=True)
    with connect(url) as conn:
        conn.autocommit = True
        fill(conn, max(SMALLEST, 1_700))
        assert conn.execute("select count(*) from public.wallet_audit()").fetchone() == (0,)
        ids = probe_ids(conn)
        conn.autocommit = False
        planned: dict[str, Any] = {}
        for who, path in all_paths():
            assert run_timed(conn, path, ids) > 0
            facts, returned = run_explained(conn, path, ids)
            planned[f"{who}:{path.name}"] = (facts, returned)
        facts, _ = run_explained(conn, admin_paths()[0], ids)
    # Every read of the app and every service call touched a data table through some plan.
    untouched = [name for name, (f, _) in planned.items()
                 if not f.index_tables and not f.seq_tables and "find_setup_intent" not in name
                 and "keyset" not in name]
    assert untouched == []
    assert planned["power:GET wallet_transactions"][1] == 20
    assert planned["None:reading_jobs_to_enqueue (sweep)"][1] == 100
    assert facts.seq_tables  # the admin audit reads every ledger row
