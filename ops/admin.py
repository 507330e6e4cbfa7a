"""Operator commands (never public endpoints), run against the database with psycopg.

    python -m ops.admin [--operator NAME] --reason TEXT COMMAND ...
      queue-health
      dead-letters                          [--limit 20] [--before CURSOR]
      replay-job JOB_ID                     [--extra-attempts 3]
      refund-reading JOB_ID
      ledger USER_ID                        [--limit 50]
      resync-payment PAYMENT_INTENT_ID      [--stripe-key KEY] [--stripe-api-base URL]
      reconcile                             [--since 3d|ISO|EPOCH] [--dry-run] [--stripe-key ...]
      actions                               [--limit 50]
      export-user / erase-user / reapply-erasures   (ops/account_admin.py)

Every command names who runs it (`--operator`, else `MIMIVIBE_OPERATOR`) and why (`--reason`),
and is refused without them; the dispatcher records both, with the command, its arguments and
its outcome, in `private.operator_actions` (ops/operators.py), whatever the command.

Every command takes `--database-url` (default `$DATABASE_URL`, else the running local stack's
`.local/stack.json`) and calls the SQL functions the functions themselves use, as
`service_role`, so every money rule still holds: replay and refund are `admin_replay_job` and
`admin_refund_reading`, a re-sync and a reconciliation feed what Stripe says now into
`apply_stripe_event` under event ids derived from the object's state (shared/reconciliation.py;
re-running them, or the real event arriving later, changes nothing twice). Stripe settings
default to `STRIPE_SECRET_KEY` / `STRIPE_API_BASE` from the environment, else the local stack's.
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
from ops.operators import OperatorRequired, history, operator_identity, recorded, require_reason
from ops.reconcile import SinceError

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


def _apply(conn: psycopg.Connection[dict[str, Any]], event_id: str, event_type: str,
           obj: dict[str, Any]) -> dict[str, Any]:
    row = _as_service(conn, "select public.apply_stripe_event(%s, %s, %s::jsonb) as r",
                      (event_id, event_type, json.dumps(obj)))
    return {"event_id": event_id, "type": event_type, **dict(row["r"])}


def resync_payment(database_url: str, payment_intent_id: str, *, stripe_client: Any = None,
                   api_key: str | None = None, api_base: str | None = None) -> dict[str, Any]:
    """Apply what Stripe says about a PaymentIntent now, for webhook events that never came.

    The synthetic event ids name the object and the state applied (`evt_resync_<pi>_succeeded`,
    `evt_resync_<refund>_failed`, `evt_resync_<dispute>_won`), so a second re-sync of the same
    state is a duplicate, and the SQL state machine ignores a real event that arrives afterwards.
    """
    from shared.reconciliation import resync_events

    client = stripe_client or _stripe_client(api_key, api_base)
    intent, events = resync_events(client, payment_intent_id)
    with _connect(database_url) as conn:
        applied = [_apply(conn, *event) for event in events]
    return {"payment_intent_id": payment_intent_id, "stripe_status": intent.get("status"),
            "applied": applied}


def dead_letters(database_url: str, limit: int = 20, before: str | None = None) -> dict[str, Any]:
    """Dead-lettered jobs, newest first, with their reason, user and age; `next` is the
    `--before` cursor of the following page (null on the last)."""
    if not 1 <= limit <= 500:
        raise AdminError("--limit must be between 1 and 500")
    cursor: tuple[str, str] | None = None
    if before:
        created, _, job_id = before.rpartition("/")
        if not created or not job_id:
            raise AdminError("--before takes the `next` value a previous page printed")
        cursor = (created, job_id)
    with _connect(database_url) as conn:
        rows = conn.execute(
            "select j.id as job_id, j.user_id, j.last_error as reason, j.attempts, j.cost_stars,"
            " j.created_at, j.completed_at as dead_lettered_at,"
            " floor(extract(epoch from now() - coalesce(j.completed_at, j.updated_at)))::bigint"
            "   as age_seconds,"
            " exists (select 1 from public.wallet_transactions w"
            "   where w.dedupe_key = 'reading-refund:' || j.id) as refunded"
            " from public.jobs j where j.status = 'dlq'"
            " and (%(c)s::timestamptz is null or (j.created_at, j.id) < (%(c)s, %(i)s::uuid))"
            " order by j.created_at desc, j.id desc limit %(n)s",
            {"c": cursor[0] if cursor else None, "i": cursor[1] if cursor else None,
             "n": limit + 1}).fetchall()
    page = [dict(r) for r in rows[:limit]]
    more = len(rows) > limit
    last = page[-1] if page else None
    return {"dead_letters": page,
            "next": f"{last['created_at'].isoformat()}/{last['job_id']}" if more and last
            else None}


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ops.admin", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="default: $DATABASE_URL, else .local/stack.json")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--operator", help="who runs the command (default: $MIMIVIBE_OPERATOR)")
    parser.add_argument("--reason", help="why (recorded with the command; required)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("queue-health", help="queue depth, oldest queued age, retries due, dead letters")
    dead = sub.add_parser("dead-letters", help="dead-lettered jobs: reason, user, age (paged)")
    dead.add_argument("--limit", type=int, default=20)
    dead.add_argument("--before", help="the `next` cursor a previous page printed")
    replay = sub.add_parser("replay-job", help="put a dead-lettered job back on the queue")
    replay.add_argument("job_id")
    replay.add_argument("--extra-attempts", type=int, default=3)
    refund = sub.add_parser("refund-reading", help="give a finished reading's stars back, once")
    refund.add_argument("job_id")
    show = sub.add_parser("ledger", help="a user's balances, ledger rows and audit result")
    show.add_argument("user_id")
    show.add_argument("--limit", type=int, default=50)
    resync = sub.add_parser("resync-payment", help="apply a PaymentIntent's state from Stripe")
    resync.add_argument("payment_intent_id")
    reconcile = sub.add_parser("reconcile", help="compare Stripe's recent objects with the"
                               " database and apply what is missing")
    reconcile.add_argument("--since", default="3d",
                           help="how far back: 36h, 3d, an ISO date or time, or epoch seconds")
    reconcile.add_argument("--dry-run", action="store_true", help="report drift, apply nothing")
    for command in (resync, reconcile):
        command.add_argument("--stripe-key")
        command.add_argument("--stripe-api-base")
    account_admin.add_commands(sub)
    actions = sub.add_parser("actions", help="the newest recorded operator actions")
    actions.add_argument("--limit", type=int, default=50)
    return parser


def command_names() -> list[str]:
    """Every subcommand the CLI accepts."""
    return sorted(name for action in _parser()._actions
                  if isinstance(action, argparse._SubParsersAction) for name in action.choices)


def _run(url: str, args: argparse.Namespace) -> tuple[Any, int]:
    """The command's result and exit code."""
    if getattr(args, "run", None):
        return args.run(url, args), EXIT_OK
    if args.command == "queue-health":
        return queue_health(url), EXIT_OK
    if args.command == "dead-letters":
        return dead_letters(url, args.limit, args.before), EXIT_OK
    if args.command == "replay-job":
        return replay_job(url, args.job_id, args.extra_attempts), EXIT_OK
    if args.command == "refund-reading":
        return refund_reading(url, args.job_id, args.reason), EXIT_OK
    if args.command == "ledger":
        result = ledger(url, args.user_id, args.limit)
        return result, EXIT_PROBLEM if result["audit"] else EXIT_OK
    if args.command == "resync-payment":
        return resync_payment(url, args.payment_intent_id, api_key=args.stripe_key,
                              api_base=args.stripe_api_base), EXIT_OK
    if args.command == "reconcile":
        from ops.reconcile import parse_since, reconcile

        since = parse_since(args.since)  # before Stripe: a bad --since needs no key
        report = reconcile(url, _stripe_client(args.stripe_key, args.stripe_api_base),
                           since=since, dry_run=args.dry_run)
        return report, EXIT_PROBLEM if report["drift"] and args.dry_run else EXIT_OK
    if args.command == "actions":
        return {"actions": history(url, args.limit)}, EXIT_OK
    raise AdminError(f"unknown command {args.command}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        operator = operator_identity(args.operator)
        reason = require_reason(args.reason)
        args.operator, args.reason = operator, reason
        url = args.database_url or default_database_url()
        with recorded(url, operator=operator, reason=reason, command=args.command,
                      arguments=vars(args)) as action:
            data, code = _run(url, args)
            action.exit_code = code
        _print(data, args.json or getattr(args, "force_json", False))
        return code
    except (OperatorRequired, AdminError, SinceError, MigrationError, psycopg.Error) as exc:
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
