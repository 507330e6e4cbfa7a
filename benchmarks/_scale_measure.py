"""Running one path the way the gateway runs it, timed, and reading its plans.

A path is one statement run in a transaction with the role and claims PostgREST sets
(`authenticated` with the user's `sub`, or `service_role`), after optional setup statements in
the same transaction, and rolled back, so every run sees the same data.

Plans come from auto_explain (loaded into the benchmark's own sessions only) with nested
statements, so the statements inside plpgsql and SQL functions are seen too. From them:
rows scanned (rows produced by every scan of a data table, plus the rows its filters removed,
times loops) and whether any data table was read by a sequential scan.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

# Tables that grow with the users; the pricing and card tables are small and fixed.
DATA_TABLES = frozenset({
    "users", "user_identities", "payments", "stripe_customers", "user_payment_methods",
    "jobs", "job_attempts", "tarot_readings", "user_invites", "wallet_transactions",
    "stripe_events", "payment_method_setups",
})
HEAP_SCANS = frozenset({"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan",
                        "Tid Scan", "Tid Range Scan"})


@dataclass
class Path:
    name: str
    role: str                      # authenticated | service_role
    sql: str
    params: Callable[[dict[str, Any]], Sequence[Any]] = lambda _ids: ()
    # Run in the same transaction before the timed statement; returns the ids for params.
    prepare: Callable[[psycopg.Connection[Any], dict[str, Any]], dict[str, Any]] | None = None
    user: str | None = None        # key of `ids` whose id is the caller's sub
    returned: Callable[[list[tuple[Any, ...]]], int] = len
    admin: bool = False


@dataclass
class PlanFacts:
    scanned: int = 0
    seq_tables: set[str] = field(default_factory=set)
    index_tables: set[str] = field(default_factory=set)
    heap_index_scans: int = 0      # index scans that visit the heap (not index-only)


def _walk(node: dict[str, Any], facts: PlanFacts) -> None:
    relation = node.get("Relation Name")
    kind = node.get("Node Type", "")
    if relation in DATA_TABLES and kind in HEAP_SCANS:
        loops = node.get("Actual Loops", 1) or 0
        rows = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
                + node.get("Rows Removed by Index Recheck", 0))
        facts.scanned += round(rows * loops)
        # An empty table's sequential scan reads nothing; any other is a finding.
        if kind == "Seq Scan" and rows * loops > 0:
            facts.seq_tables.add(relation)
        elif kind != "Seq Scan":
            facts.index_tables.add(relation)
            facts.heap_index_scans += kind != "Index Only Scan"
    for child in node.get("Plans", []):
        _walk(child, facts)


def plan_facts(notices: list[str]) -> PlanFacts:
    facts = PlanFacts()
    for text in notices:
        start = text.find("{")
        if "plan:" not in text or start < 0:
            continue
        _walk(json.loads(text[start:])["Plan"], facts)
    return facts


def _enter(conn: psycopg.Connection[Any], path: Path, ids: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = {"role": path.role}
    if path.user is not None:
        claims.update(sub=str(ids[path.user]), aud="authenticated")
    conn.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                 (path.role, json.dumps(claims)))
    return path.prepare(conn, ids) if path.prepare is not None else ids


def run_timed(conn: psycopg.Connection[Any], path: Path, ids: dict[str, Any]) -> float:
    """One run, in ms (the statement's round trip only)."""
    with conn.transaction(force_rollback=True):
        params = path.params(_enter(conn, path, ids))
        t0 = time.perf_counter()
        conn.execute(path.sql, params, prepare=False).fetchall()
        return (time.perf_counter() - t0) * 1000


def run_explained(conn: psycopg.Connection[Any], path: Path,
                  ids: dict[str, Any]) -> tuple[PlanFacts, int]:
    """One run under auto_explain: the plan facts and the rows the path returned."""
    notices: list[str] = []

    def collect(diag: psycopg.errors.Diagnostic) -> None:
        if diag.message_primary:
            notices.append(diag.message_primary)

    conn.add_notice_handler(collect)
    try:
        with conn.transaction(force_rollback=True):
            # Superuser settings first: the role switch below drops the right to change them.
            conn.execute("set local auto_explain.log_min_duration = 0")
            conn.execute("set local auto_explain.log_analyze = on")
            conn.execute("set local auto_explain.log_timing = off")
            conn.execute("set local auto_explain.log_nested_statements = on")
            conn.execute("set local auto_explain.log_format = json")
            conn.execute("set local auto_explain.log_level = notice")
            params = path.params(_enter(conn, path, ids))
            before = _written(conn)
            notices.clear()
            rows = conn.execute(path.sql, params).fetchall()
            # A statement run with parameters reports its plan when its portal closes, which
            # the next statement does.
            written = _written(conn) - before
    finally:
        conn.remove_notice_handler(collect)
    own = [n for n in notices if _WRITTEN_SQL not in n]
    # A write path "returns" the rows it writes as well as the rows it answers with.
    return plan_facts(own), max(path.returned(rows), written)


_WRITTEN_SQL = ("select coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)"
                " from pg_catalog.pg_stat_xact_user_tables")


def _written(conn: psycopg.Connection[Any]) -> int:
    """Rows inserted, updated or deleted so far in this transaction."""
    row = conn.execute(_WRITTEN_SQL).fetchone()
    return int(row[0]) if row else 0


def connect(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url)
    conn.execute("load 'auto_explain'")
    conn.commit()
    return conn
