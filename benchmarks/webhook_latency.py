"""Stripe webhook acknowledgement latency through the function URL under a burst, next to the
time of the SQL function (public.apply_stripe_event) alone.

    .venv/bin/python -m benchmarks.webhook_latency [--events 300] [--senders 16]

Starts the local stack in a throwaway folder (free ports; `DATABASE_URL` selects an existing
PostgreSQL), creates pending payments, then:
  1. burst: `--senders` concurrent senders POST one signed payment_intent.succeeded per payment
     to /stripe-webhook (signature check, PostgREST RPC, SQL function, commit, 200);
  2. SQL alone: the same kind of event for fresh payments, applied with psycopg as service_role,
     one call at a time.
Prints p50 / p99 / max of both, from one run. Every event credits stars; the run checks that
wallet_audit() is empty at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg

from devstack.stack import LocalStack
from devstack.stripe_standin import signature_header


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def summary(samples_ms: list[float]) -> str:
    return (f"p50 {statistics.median(samples_ms):7.2f} ms   p99 {percentile(samples_ms, 99):7.2f} ms"
            f"   max {max(samples_ms):7.2f} ms   (n={len(samples_ms)})")


def succeeded_event(payment_id: str, amount: int) -> dict[str, Any]:
    intent = f"pi_bench_{uuid.uuid4().hex[:20]}"
    return {"id": f"evt_bench_{uuid.uuid4().hex}", "object": "event", "type":
            "payment_intent.succeeded", "created": int(time.time()), "livemode": False,
            "data": {"object": {"id": intent, "object": "payment_intent", "amount": amount,
                                "currency": "thb", "status": "succeeded",
                                "latest_charge": f"ch_bench_{uuid.uuid4().hex[:20]}",
                                "metadata": {"payment_id": payment_id}}}}


def one(cursor: psycopg.Cursor[Any]) -> Any:
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the query returned no row")
    return row[0]


def pending_payments(conn: psycopg.Connection[Any], count: int) -> list[tuple[str, int]]:
    """`count` pending payments spread over a few users (as the purchase function makes them)."""
    users = [one(conn.execute(
        "insert into public.users (external_provider, external_id) values ('custom', %s)"
        " returning id", (f"bench-{uuid.uuid4().hex}",))) for _ in range(16)]
    payments = []
    with conn.transaction():
        conn.execute("set local role service_role")
        for index in range(count):
            row = one(conn.execute("select public.begin_purchase(%s, 'basic', %s, 'bench')",
                                   (users[index % len(users)], str(uuid.uuid4()))))
            payments.append((row["id"], row["amount"]))
    return payments


def burst(url: str, secret: str, events: list[dict[str, Any]], senders: int) -> list[float]:
    bodies = [json.dumps(e, indent=2).encode() for e in events]
    latencies: list[float] = []
    lock = threading.Lock()
    local = threading.local()

    def send(raw: bytes) -> None:
        if not hasattr(local, "http"):
            local.http = httpx.Client(timeout=30)
        started = time.perf_counter()
        response = local.http.post(url, content=raw, headers={
            "Stripe-Signature": signature_header(raw, secret),
            "Content-Type": "application/json"})
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.text[:200]}")
        with lock:
            latencies.append(elapsed)

    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(send, bodies))
    return latencies


def sql_alone(conn: psycopg.Connection[Any], events: list[dict[str, Any]]) -> list[float]:
    latencies = []
    for event in events:
        started = time.perf_counter()
        with conn.transaction():
            conn.execute("set local role service_role")
            conn.execute("select public.apply_stripe_event(%s, %s, %s::jsonb, null)",
                         (event["id"], event["type"], json.dumps(event["data"]["object"])))
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def quiet_function_output() -> None:
    """The handlers still format their JSON logs and metrics (that is part of the latency);
    the lines just do not bury the result."""
    from shared.observability import configure_logging, metrics

    configure_logging(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
    metrics.use_sink(lambda line: None)
    logging.getLogger("devstack").setLevel(logging.WARNING)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--senders", type=int, default=16)
    args = parser.parse_args()
    quiet_function_output()
    with tempfile.TemporaryDirectory(prefix="mimivibe-bench-") as root, \
            LocalStack(Path(root), preferred_ports=False) as stack:
        url = stack.info["urls"]["functions"] + "/stripe-webhook"
        secret = stack.environment["STRIPE_WEBHOOK_SECRET"]
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            warm = pending_payments(conn, args.senders)
            burst(url, secret, [succeeded_event(p, a) for p, a in warm], args.senders)
            events = [succeeded_event(p, a) for p, a in pending_payments(conn, args.events)]
            started = time.perf_counter()
            through_url = burst(url, secret, events, args.senders)
            wall = time.perf_counter() - started
            alone = sql_alone(conn, [succeeded_event(p, a)
                                     for p, a in pending_payments(conn, args.events)])
            problems = one(conn.execute("select count(*) from public.wallet_audit()"))
        print(f"\nStripe webhook acknowledgement, {args.events} events, {args.senders} senders "
              f"({args.events / wall:.0f} events/s)")
        print(f"  function URL (burst): {summary(through_url)}")
        print(f"  SQL function alone:   {summary(alone)}")
        print(f"  wallet_audit problems: {problems}")
        return 0 if problems == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
