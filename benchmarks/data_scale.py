"""Is every SQL path flat as the data grows 100x? Two fills of the schema in one cluster, side by side.

    .venv/bin/python -m benchmarks.data_scale [--users 2000] [--factor 100] [--runs 60] [--full]

Starts a throwaway PostgreSQL cluster (the embedded one the tests use, or `--database-url` of a
server whose user may create databases), migrates two databases and fills them with set-based
SQL (`benchmarks/_scale_fill.py`): `--users` and `--users x --factor` users (`--full`: 10,000
and 1,000,000). The ledger invariants hold: `wallet_audit()` must be empty at both sizes.

Then, for every path (`benchmarks/_scale_paths.py`: each REST read of the app as
`authenticated` under RLS, each RPC, each SQL function the handlers and the job consumer call),
`--runs` runs per size, the sizes interleaved, each in a rolled-back transaction: median ms
small and large and their ratio, the rows the path scanned and returned at the large size
(from its plans, nested statements included) and whether a data table was read sequentially.
A path is marked `!` when it is slower by more than 1.5x at the large size, scans more than 10x
the rows it returns, or reads a data table sequentially. `wallet_audit()` is reported apart: it
reads every ledger row by design (the admin check).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path as FsPath
from typing import Any

from benchmarks._scale_fill import fill
from benchmarks._scale_measure import Path, PlanFacts, connect, run_explained, run_timed
from benchmarks._scale_paths import admin_paths, all_paths, probe_ids
from devstack.database import apply_bootstrap, create_database, drop_database
from devstack.postgres import PostgresCluster

RATIO_LIMIT = 1.5
SCAN_LIMIT = 10
SESSIONS = 4


def _prepare(server: str, name: str, users: int) -> str:
    from ops.migrate import migrate_up

    drop_database(server, name)  # a fresh fill every run, also on a server of --database-url
    url = create_database(server, name)
    apply_bootstrap(url)
    migrate_up(url)
    t0 = time.monotonic()
    with connect(url) as conn:
        conn.autocommit = True
        fill(conn, users)
    print(f"  {name}: {users:,} users filled in {time.monotonic() - t0:.0f} s", flush=True)
    return url


def _counts(conn: Any) -> str:
    rows = conn.execute(
        "select relname, n_live_tup from pg_stat_user_tables where schemaname = 'public'"
        " and relname in ('wallet_transactions', 'jobs', 'job_attempts', 'tarot_readings',"
        " 'user_invites', 'payments') order by relname").fetchall()
    return ", ".join(f"{name} {count:,}" for name, count in rows)


def _verdict(ratio: float, facts: PlanFacts, returned: int) -> tuple[str, list[str]]:
    reasons = []
    if ratio > RATIO_LIMIT:
        reasons.append(f">{RATIO_LIMIT}x")
    if facts.scanned > SCAN_LIMIT * max(returned, 1):
        reasons.append(f"scans >{SCAN_LIMIT}x")
    if facts.seq_tables:
        reasons.append("seq scan")
    if facts.seq_tables:
        plan = "seq " + ",".join(sorted(facts.seq_tables))
    elif facts.index_tables:
        plan = "index" if facts.heap_index_scans else "index-only"
    else:
        plan = "-"
    return plan, reasons


def measure(urls: tuple[str, str], paths: list[tuple[str | None, Path]], runs: int,
            ids: tuple[dict[str, Any], dict[str, Any]]) -> list[list[str]]:
    # Several sessions per size, taken in turn: a session's round trips can sit at a level of
    # their own for its whole life (where the scheduler puts its server process on this
    # machine's two cores), enough to double a 0.1 ms path's median between two sessions.
    conns = tuple([connect(url) for _ in range(SESSIONS)] for url in urls)
    table = []
    marked = 0
    try:
        for who, path in paths:
            samples: tuple[list[float], list[float]] = ([], [])
            for k in (0, 1):
                for conn in conns[k]:
                    run_timed(conn, path, ids[k])  # warm the caches and the plan
            for i in range(runs):
                for k in (0, 1):
                    samples[k].append(run_timed(conns[k][i % SESSIONS], path, ids[k]))
            small, large = (statistics.median(s) for s in samples)
            facts, returned = run_explained(conns[1][0], path, ids[1])
            ratio = large / small if small else float("inf")
            plan, reasons = _verdict(ratio, facts, returned)
            if reasons and not path.admin:
                marked += 1
            table.append([path.name, who or "service", f"{small:.3f}", f"{large:.3f}",
                          f"{ratio:.2f}x", f"{facts.scanned:,}/{returned:,}", plan,
                          ("! " + ", ".join(reasons)) if reasons else ""])
    finally:
        for side in conns:
            for conn in side:
                conn.close()
    table.append([f"{marked} marked", "", "", "", "", "", "", ""])
    return table


def _print(table: list[list[str]]) -> None:
    head = ["path", "caller", "small ms", "large ms", "ratio", "scanned/returned", "plan", ""]
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head))]
    for row in [head, *table]:
        print("  ".join(c.ljust(w) if i in (0, 1, 6, 7) else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--factor", type=int, default=100)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--full", action="store_true", help="10,000 and 1,000,000 users")
    parser.add_argument("--database-url", help="a server to use instead of a throwaway cluster")
    args = parser.parse_args()
    small_users = 10_000 if args.full else args.users
    sizes = (small_users, small_users * args.factor)

    cluster = None
    if args.database_url:
        server = args.database_url
    else:
        scratch = FsPath(tempfile.mkdtemp(prefix="mimivibe-scale-"))
        cluster = PostgresCluster(scratch / "data")
        cluster.start()
        server = cluster.url
    try:
        print(f"data scale: {sizes[0]:,} vs {sizes[1]:,} users, {args.runs} runs per size")
        urls = (_prepare(server, "scale_small", sizes[0]), _prepare(server, "scale_large",
                                                                     sizes[1]))
        ids = []
        for url in urls:
            with connect(url) as conn:
                problems = conn.execute("select count(*) from public.wallet_audit()").fetchone()
                print(f"  {_counts(conn)}; wallet_audit() rows: {problems[0]}")  # type: ignore[index]
                if problems[0]:  # type: ignore[index]
                    raise SystemExit("the fill broke the ledger invariants")
                ids.append(probe_ids(conn))
        _print(measure(urls, all_paths(), args.runs, (ids[0], ids[1])))
        print("admin path (reads every ledger row by design):")
        _print(measure(urls, [(None, p) for p in admin_paths()], min(args.runs, 5),
                       (ids[0], ids[1]))[:-1])
    finally:
        if cluster is not None:
            cluster.destroy()
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            for name in ("scale_small", "scale_large"):
                drop_database(server, name)


if __name__ == "__main__":
    main()
