"""Operator commands (never public endpoints), run against the database with psycopg.

    python -m ops.admin queue-health                      [--json]
    python -m ops.admin replay-job JOB_ID                 [--extra-attempts 3]
    python -m ops.admin refund-reading JOB_ID             [--reason TEXT]
    python -m ops.admin ledger USER_ID                    [--limit 50] [--json]
    python -m ops.admin resync-payment PAYMENT_INTENT_ID  [--stripe-key KEY] [--stripe-api-base URL]
    python -m ops.admin export-user / erase-user          (ops/account_admin.py)

Every command takes `--database-url` (default `$DATABASE_URL`, else the running local stack's
`.local/stack.json`) and calls the SQL functions the functions themselves use, as
`service_role`, so every money rule still holds: replay and refund are `admin_replay_job` and
`admin_refund_reading`, a re-sync feeds what Stripe says now into `apply_stripe_event` under
event ids derived from the object's state (re-running it, or the real event arriving later,
changes nothing twice). Stripe settings default to `STRIPE_SECRET_KEY` / `STRIPE_API_BASE`
from the environment, else the local stack's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ops import account_admin
from ops.migrate import STACK_FILE, MigrationError, default_database_url

EXIT_OK, EXIT_PROBLEM, EXIT_ERROR = 0, 1, 2


class AdminError(RuntimeError):
    """A command could not do what was asked; the message says why."""


def _connect(database_url: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(database_url, autocommit=True, row_factory=dict_row)


def _as_service(conn: psycopg.Connection[dict[str, Any]], sql: str,
                params: Sequence[Any]) -> dict[str, Any]:
    """One SQL function call as service_role, in its own transaction; MV errors → AdminError."""
    try:
        with conn.transaction():
            conn.execute("set local role service_role")
            row = conn.execute(sql, params).fetchone()
    except psycopg.Error as exc:
        diag = exc.diag
        if (exc.sqlstate or "").startswith("MV"):
            raise AdminError(f"{diag.message_primary}: {diag.message_detail}") from exc
        raise
    assert row is not None
    return dict(row)


def queue_health(database_url: str) -> dict[str, Any]:
    with _connect(database_url) as conn:
        return _as_service(conn, "select * from public.queue_health()", ())


def replay_job(database_url: str, job_id: str, extra_attempts: int = 3) -> dict[str, Any]:
    with _connect(database_url) as conn:
        row = _as_service(conn, "select public.admin_replay_job(%s::uuid, %s) as r",
                          (job_id, extra_attempts))
    return dict(row["r"])


def refund_reading(database_url: str, job_id: str, reason: str = "operator") -> dict[str, Any]:
    with _connect(database_url) as conn:
        row = _as_service(conn, "select public.admin_refund_reading(%s::uuid, %s) as r",
                          (job_id, reason))
    return dict(row["r"])


def ledger(database_url: str, user_id: str, limit: int = 50) -> dict[str, Any]:
    """Balances, the newest ledger rows and the wallet audit of one user."""
    with _connect(database_url) as conn:
        user = conn.execute(
            "select id, star_balance, coin_balance, tier, total_invites from public.users"
            " where id = %s::uuid", (user_id,)).fetchone()
        if user is None:
            raise AdminError(f"no user {user_id}")
        rows = conn.execute(
            "select seq, created_at, currency, transaction_type, amount, balance_after, dedupe_key,"
            " metadata"
            " from public.wallet_transactions where user_id = %s::uuid"
            " order by seq desc limit %s", (user_id, limit)).fetchall()
        problems = conn.execute(
            "select currency, cached_balance, ledger_sum, last_balance_after, problem"
            " from public.wallet_audit() where user_id = %s::uuid", (user_id,)).fetchall()
    return {"user": dict(user), "transactions": [dict(r) for r in rows],
            "audit": [dict(p) for p in problems]}


def _stack_environment() -> dict[str, str]:
    if STACK_FILE.exists():
        return dict(json.loads(STACK_FILE.read_text("utf-8")).get("environment") or {})
    return {}


def _stripe_client(api_key: str | None, api_base: str | None) -> Any:
    import stripe

    stack = _stack_environment()
    key = api_key or os.environ.get("STRIPE_SECRET_KEY") or stack.get("STRIPE_SECRET_KEY")
    base = api_base or os.environ.get("STRIPE_API_BASE") or stack.get("STRIPE_API_BASE")
    if not key:
        raise AdminError("no Stripe key: pass --stripe-key or set STRIPE_SECRET_KEY")
    return stripe.StripeClient(key, base_addresses={"api": base.rstrip("/")} if base else {},
                               max_network_retries=2)


def _plain(obj: Any) -> dict[str, Any]:
    return dict(json.loads(json.dumps(obj.to_dict() if hasattr(obj, "to_dict") else obj)))


def _apply(conn: psycopg.Connection[dict[str, Any]], event_id: str, event_type: str,
           obj: dict[str, Any]) -> dict[str, Any]:
    row = _as_service(conn, "select public.apply_stripe_event(%s, %s, %s::jsonb) as r",
                      (event_id, event_type, json.dumps(obj)))
    return {"event_id": event_id, "type": event_type, **dict(row["r"])}


def resync_payment(database_url: str, payment_intent_id: str, *, stripe_client: Any = None,
                   api_key: str | None = None, api_base: str | None = None) -> dict[str, Any]:
    """Apply what Stripe says about a PaymentIntent now, for webhook events that never came.

    The synthetic event ids name the object and the state applied (`evt_resync_<pi>_succeeded`,
    `evt_resync_<charge>_refunded_<amount>`), so a second re-sync of the same state is a
    duplicate, and the SQL state machine ignores a real event that arrives afterwards.
    """
    client = stripe_client or _stripe_client(api_key, api_base)
    intent = _plain(client.v1.payment_intents.retrieve(payment_intent_id))
    status = intent.get("status")
    applied: list[dict[str, Any]] = []
    with _connect(database_url) as conn:
        if status == "succeeded":
            applied.append(_apply(conn, f"evt_resync_{intent['id']}_succeeded",
                                  "payment_intent.succeeded", intent))
            charge_id = intent.get("latest_charge")
            if isinstance(charge_id, dict):
                charge_id = charge_id.get("id")
            if charge_id:
                charge = _plain(client.v1.charges.retrieve(charge_id))
                refunded = int(charge.get("amount_refunded") or 0)
                if refunded > 0:
                    applied.append(_apply(conn, f"evt_resync_{charge['id']}_refunded_{refunded}",
                                          "charge.refunded", charge))
        elif status == "canceled":
            applied.append(_apply(conn, f"evt_resync_{intent['id']}_canceled",
                                  "payment_intent.canceled", intent))
        elif status == "requires_payment_method" and intent.get("last_payment_error"):
            applied.append(_apply(conn, f"evt_resync_{intent['id']}_failed",
                                  "payment_intent.payment_failed", intent))
    return {"payment_intent_id": payment_intent_id, "stripe_status": status, "applied": applied}


def _print(data: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2, default=str, ensure_ascii=False))
        return
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, list):
                print(f"{key}:")
                for item in value:
                    print("  " + json.dumps(item, default=str, ensure_ascii=False))
            else:
                print(f"{key}: {value}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.admin", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="default: $DATABASE_URL, else .local/stack.json")
    parser.add_argument("--json", action="store_true", help="print JSON")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("queue-health", help="queue depth, oldest queued age, retries due, dead letters")
    replay = sub.add_parser("replay-job", help="put a dead-lettered job back on the queue")
    replay.add_argument("job_id")
    replay.add_argument("--extra-attempts", type=int, default=3)
    refund = sub.add_parser("refund-reading", help="give a finished reading's stars back, once")
    refund.add_argument("job_id")
    refund.add_argument("--reason", default="operator")
    show = sub.add_parser("ledger", help="a user's balances, ledger rows and audit result")
    show.add_argument("user_id")
    show.add_argument("--limit", type=int, default=50)
    resync = sub.add_parser("resync-payment", help="apply a PaymentIntent's state from Stripe")
    resync.add_argument("payment_intent_id")
    resync.add_argument("--stripe-key")
    resync.add_argument("--stripe-api-base")
    account_admin.add_commands(sub)
    args = parser.parse_args(argv)
    try:
        url = args.database_url or default_database_url()
        if getattr(args, "run", None):
            _print(args.run(url, args), args.json or getattr(args, "force_json", False))
        elif args.command == "queue-health":
            _print(queue_health(url), args.json)
        elif args.command == "replay-job":
            _print(replay_job(url, args.job_id, args.extra_attempts), args.json)
        elif args.command == "refund-reading":
            _print(refund_reading(url, args.job_id, args.reason), args.json)
        elif args.command == "ledger":
            result = ledger(url, args.user_id, args.limit)
            _print(result, args.json)
            return EXIT_PROBLEM if result["audit"] else EXIT_OK
        else:
            _print(resync_payment(url, args.payment_intent_id, api_key=args.stripe_key,
                                  api_base=args.stripe_api_base), args.json)
        return EXIT_OK
    except (AdminError, MigrationError, psycopg.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        # Stripe errors (unknown PaymentIntent, bad key) are reported, not dumped as a traceback.
        if type(exc).__module__.startswith("stripe"):
            print(f"error: Stripe: {exc}", file=sys.stderr)
            return EXIT_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
