"""Every path the app and the functions take through the database, for the data-scale benchmark.

The app's REST reads are the statements the gateway builds for them (PostgREST's shape: the
page in a CTE, JSON built in SQL), run as `authenticated` with the user's claims; the RPCs and
the functions' SQL calls as the role that calls them. Callers: `typical` (an ordinary user:
8 ledger rows, one reading) and `power` (20,000 ledger rows, 2,000 readings, 1,000 invites),
the same users at every size.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from benchmarks._scale_fill import DUE_JOBS, POWER_USERS, user_number
from benchmarks._scale_measure import Path
from devstack.gateway.statements import wrap

OFFSET = 200
# An ordinary user (not invited, one payment, a saved card, a finished reading).
TYPICAL = POWER_USERS + 1598


def of(*keys: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """Parameters taken from the probe ids."""
    return lambda ids: tuple(ids[k] for k in keys)


def rest(source: str, *, count_from: str | None = None) -> str:
    """The gateway's read statement around `source` (with `count=exact` when count_from)."""
    total = sql.SQL(f"(SELECT pg_catalog.count(*) FROM {count_from})") if count_from else None
    return wrap(sql.SQL(source), shape="array", total=total).as_string(None)


def page_total(rows: list[tuple[Any, ...]]) -> int:
    return int(rows[0][1])


def page_and_skipped(rows: list[tuple[Any, ...]]) -> int:
    """An offset page asks the database to walk the skipped rows too."""
    return int(rows[0][1]) + OFFSET


def page_and_counted(rows: list[tuple[Any, ...]]) -> int:
    """count=exact asks for every row of the user to be counted."""
    return int(rows[0][1]) + int(rows[0][0])


def counted(rows: list[tuple[Any, ...]]) -> int:
    """queue_health counts the open and dead-lettered jobs."""
    depth, dead = rows[0][0], rows[0][6]
    return max(int(depth) + int(dead), 1)


def summary_counted(rows: list[tuple[Any, ...]]) -> int:
    """wallet_summary counts the caller's pending invites."""
    return 1 + int(rows[0][0]["pending_invites"])


def json_length(rows: list[tuple[Any, ...]]) -> int:
    value = rows[0][0]
    return len(value) if isinstance(value, list) else 1


def scalar(rows: list[tuple[Any, ...]]) -> int:
    return int(rows[0][0] or 0)


def probe_ids(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Ids the paths use, the same user numbers at every size; adds the probe rows it needs."""
    ids: dict[str, Any] = {"power": user_number(conn, 1), "typical": user_number(conn, TYPICAL)}
    # A due job's id (queued, never rung by the sweep).
    ids["due_job"] = conn.execute(
        "select id from public.jobs where status = 'queued' and enqueued_at is null"
        " order by created_at limit 1").fetchone()[0]  # type: ignore[index]
    for who in ("typical", "power"):
        row = conn.execute("select id from public.jobs where user_id = %s order by created_at desc"
                           " limit 1", (ids[who],)).fetchone()
        ids[f"{who}_job"] = row[0]  # type: ignore[index]
        row = conn.execute("select id from public.user_payment_methods where user_id = %s",
                           (ids[who],)).fetchone()
        ids[f"{who}_card"] = row[0] if row else uuid.uuid4()
        row = conn.execute("select created_at from public.wallet_transactions where user_id = %s"
                           " order by created_at desc offset 100 limit 1", (ids[who],)).fetchone()
        ids[f"{who}_cursor"] = row[0] if row else None
    ids["typical_code"] = conn.execute("select invite_code from public.users where id = %s",
                                       (ids["typical"],)).fetchone()[0]  # type: ignore[index]
    # An invitee of the power user whose invite is pending, with a payment about to succeed:
    # its webhook qualifies the invite (the inviter's count of accepted invites).
    invitee = conn.execute(
        "select i.invitee_id from public.user_invites i where i.inviter_id = %s"
        " and i.status = 'pending' and i.expires_at > now() order by i.created_at limit 1",
        (ids["power"],)).fetchone()[0]  # type: ignore[index]
    ids["probe_payment"] = conn.execute(
        "insert into public.payments (user_id, amount, package_type, stars_purchased,"
        " stripe_payment_intent_id) values (%s, 4900, 'starter', 5, 'pi_bench_probe')"
        " returning id", (invitee,)).fetchone()[0]  # type: ignore[index]
    # Someone who signed up today and has redeemed no code.
    ids["fresh"] = conn.execute(
        "insert into public.users (external_id, external_provider) values ('bench-fresh',"
        " 'custom') returning id").fetchone()[0]  # type: ignore[index]
    conn.commit()
    return ids


def _claim(conn: psycopg.Connection[Any], ids: dict[str, Any]) -> dict[str, Any]:
    conn.execute("select public.claim_reading_jobs(array[%s]::uuid[], 'bench', 240)",
                 (ids["due_job"],))
    return ids


def _purchase(conn: psycopg.Connection[Any], ids: dict[str, Any]) -> dict[str, Any]:
    row = conn.execute("select public.begin_purchase(%s, 'starter', 'bench-key', 'bench-hash')",
                       (ids["typical"],)).fetchone()
    return {**ids, "payment": row[0]["id"]}  # type: ignore[index]


def _reading_result(ids: dict[str, Any]) -> str:
    return json.dumps([{
        "job_id": str(ids["due_job"]), "attempt": 1, "kind": "reading",
        "question_analysis": {}, "tarot_reading": {"summary": "s", "advice": "a"},
        "processing_time_ms": 5, "prompt_version": "bench", "schema_version": "1",
    }])


def _stripe_event(ids: dict[str, Any]) -> tuple[str, str]:
    intent = {"id": "pi_bench_probe", "object": "payment_intent", "status": "succeeded",
              "amount": 4900, "currency": "thb", "latest_charge": "ch_bench_probe",
              "metadata": {"payment_id": str(ids["probe_payment"])}}
    return f"evt_bench_{uuid.uuid4().hex}", json.dumps(intent)


def _user_reads(who: str) -> list[Path]:
    page = "ORDER BY t.created_at DESC, t.id DESC LIMIT 20"
    reads = [
        ("users", "SELECT t.* FROM public.users t"),
        ("user_identities", "SELECT t.* FROM public.user_identities t"),
        ("wallet_transactions", f"SELECT t.* FROM public.wallet_transactions t {page}"),
        ("payments", f"SELECT t.* FROM public.payments t {page}"),
        ("user_payment_methods",
         "SELECT t.id, t.brand, t.last4, t.exp_month, t.exp_year, t.is_default "
         "FROM public.user_payment_methods t WHERE t.is_active = true "
         "ORDER BY t.created_at DESC"),
        ("tarot_readings", f"SELECT t.* FROM public.tarot_readings t {page}"),
        ("jobs", f"SELECT t.* FROM public.jobs t {page}"),
        ("job_attempts",
         "SELECT t.* FROM public.job_attempts t ORDER BY t.created_at DESC LIMIT 20"),
        ("user_invites (sent)",
         "SELECT t.* FROM public.user_invites t WHERE t.inviter_id = %s "
         "ORDER BY t.created_at DESC LIMIT 20"),
        ("user_invites (all)",
         "SELECT t.* FROM public.user_invites t ORDER BY t.created_at DESC LIMIT 20"),
        ("stripe_customers", "SELECT t.* FROM public.stripe_customers t"),
    ]
    paths = [
        Path(f"GET {name}", "authenticated", rest(source), user=who, returned=page_total,
             params=of(who) if "%s" in source else of())
        for name, source in reads
    ]
    paths.append(Path(
        f"GET wallet_transactions offset {OFFSET}", "authenticated",
        rest(f"SELECT t.* FROM public.wallet_transactions t {page} OFFSET {OFFSET}"),
        user=who, returned=page_and_skipped))
    paths.append(Path(
        "GET wallet_transactions keyset", "authenticated",
        rest(f"SELECT t.* FROM public.wallet_transactions t WHERE t.created_at < %s {page}"),
        user=who, returned=page_total, params=of(f"{who}_cursor")))
    paths.append(Path(
        "GET wallet_transactions count=exact", "authenticated",
        rest(f"SELECT t.* FROM public.wallet_transactions t {page}",
             count_from="public.wallet_transactions"),
        user=who, returned=page_and_counted))
    return paths


def _user_rpcs(who: str) -> list[Path]:
    paths = [
        Path("rpc wallet_summary", "authenticated", "select public.wallet_summary()", user=who,
             returned=summary_counted),
        Path("rpc reading_status", "authenticated", "select * from public.reading_status(%s)",
             params=of(f"{who}_job"), user=who),
        Path("rpc search_readings", "authenticated",
             "select * from public.search_readings('ความรัก')", user=who),
        Path("rpc exchange_coins", "authenticated",
             "select public.exchange_coins(100, 'bench-exchange')", user=who),
        Path("rpc set_default_payment_method", "authenticated",
             "select public.set_default_payment_method(%s)",
             params=of(f"{who}_card"), user=who),
    ]
    # Only the power user has coins to exchange (from the invite rewards).
    return [p for p in paths if who == "power" or p.name != "rpc exchange_coins"]


def service_paths() -> list[Path]:
    svc = "service_role"
    return [
        Path("upsert_user_from_identity", svc,
             "select public.upsert_user_from_identity('custom', %s, null, false, 'Bench')",
             params=lambda ids: (f"bench-{TYPICAL}",)),
        Path("stripe_customers by user", svc,
             rest("SELECT t.stripe_customer_id FROM public.stripe_customers t "
                  "WHERE t.user_id = %s"),
             params=lambda ids: (ids["typical"],), returned=page_total),
        Path("begin_purchase", svc,
             "select public.begin_purchase(%s, 'starter', 'bench-key', 'bench-hash')",
             params=lambda ids: (ids["typical"],)),
        Path("record_payment_intent", svc, "select public.record_payment_intent(%s, 'pi_bench_new')",
             params=lambda ids: (ids["payment"],), prepare=_purchase),
        Path("record_stripe_customer", svc, "select public.record_stripe_customer(%s, 'cus_b_x')",
             params=lambda ids: (ids["fresh"],)),
        Path("find_setup_intent", svc, "select public.find_setup_intent(%s, 'bench')",
             params=lambda ids: (ids["typical"],)),
        Path("deactivate_payment_method", svc, "select public.deactivate_payment_method(%s, %s)",
             params=lambda ids: (ids["power"], ids["power_card"])),
        Path("apply_stripe_event (succeeded, qualifies an invite)", svc,
             "select public.apply_stripe_event(%s, 'payment_intent.succeeded', %s::jsonb)",
             params=_stripe_event),
        Path("redeem_invite", svc, "select public.redeem_invite(%s, %s)",
             params=lambda ids: (ids["fresh"], ids["typical_code"])),
        Path("create_reading_job", svc,
             "select public.create_reading_job(%s, 'bench-key', 'bench-hash', 'ความรัก', 3)",
             params=lambda ids: (ids["typical"],)),
        Path("claim_reading_jobs", svc,
             "select public.claim_reading_jobs(array[%s]::uuid[], 'bench', 240)",
             params=lambda ids: (ids["due_job"],), returned=json_length),
        Path("finish_reading_jobs", svc, "select public.finish_reading_jobs(%s::jsonb)",
             params=lambda ids: (_reading_result(ids),), prepare=_claim, returned=json_length),
        Path("reading_jobs_to_enqueue (sweep)", svc,
             "select public.reading_jobs_to_enqueue(100, 10, 300)", returned=json_length),
        Path("expire_pending_invites", svc, "select public.expire_pending_invites()",
             returned=scalar),
        Path("queue_health", svc, "select * from public.queue_health()", returned=counted),
    ]


def all_paths() -> list[tuple[str | None, Path]]:
    """(caller, path) for every path; the caller is None for the service-side calls."""
    out: list[tuple[str | None, Path]] = []
    for who in ("typical", "power"):
        out += [(who, p) for p in _user_reads(who) + _user_rpcs(who)]
    out += [(None, p) for p in service_paths()]
    return out


def admin_paths() -> list[Path]:
    return [Path("wallet_audit()", "service_role", "select * from public.wallet_audit()",
                 admin=True, returned=lambda rows: max(len(rows), 1))]


assert DUE_JOBS >= 100  # the sweep returns a full batch at every size
