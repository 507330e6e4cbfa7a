"""`python -m ops.admin reconcile`: the reconciliation with Stripe (shared/reconciliation.py) run
by hand against a database URL, through the same `apply_stripe_event` as service_role."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from shared.reconciliation import Reconciler, payment_states
from shared.reconciliation_rules import PaymentState, StripeObject

_RELATIVE = re.compile(r"^(\d+)([hd])$")


class SinceError(ValueError):
    """`--since` is neither a duration, a date nor a timestamp."""


def parse_since(text: str, now: float | None = None) -> int:
    """`36h`, `3d`, `2026-12-01`, `2026-12-01T08:00:00+07:00` or epoch seconds → epoch seconds."""
    value = text.strip()
    now = time.time() if now is None else now
    if match := _RELATIVE.match(value):
        return int(now - int(match.group(1)) * (3600 if match.group(2) == "h" else 86400))
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SinceError(f"--since {text!r}: use 36h, 3d, an ISO date or time, or epoch seconds")\
            from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


class PsycopgStore:
    """The reconciliation's database side over one psycopg connection, as service_role."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self._conn = conn

    def payments(self, intent_ids: Sequence[str]) -> dict[str, PaymentState]:
        with self._conn.transaction():
            self._conn.execute("set local role service_role")
            rows = self._conn.execute(
                "select id, stripe_payment_intent_id, status::text as status, amount,"
                " amount_refunded, amount_disputed from public.payments"
                " where stripe_payment_intent_id = any(%s)", (list(intent_ids),)).fetchall()
            ids = [r["id"] for r in rows]
            refunds = self._conn.execute(
                "select payment_id, stripe_refund_id, status from public.payment_refunds"
                " where payment_id = any(%s)", (ids,)).fetchall()
            disputes = self._conn.execute(
                "select payment_id, stripe_dispute_id, status from public.payment_disputes"
                " where payment_id = any(%s)", (ids,)).fetchall()
        return payment_states(rows, refunds, disputes)

    def apply(self, event_id: str, event_type: str, obj: StripeObject) -> dict[str, Any]:
        with self._conn.transaction():
            self._conn.execute("set local role service_role")
            row = self._conn.execute(
                "select public.apply_stripe_event(%s, %s, %s::jsonb) as r",
                (event_id, event_type, json.dumps(obj))).fetchone()
        assert row is not None
        return dict(row["r"])


def reconcile(database_url: str, stripe_client: Any, *, since: int,
              dry_run: bool = False) -> dict[str, Any]:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        report = Reconciler(stripe_client=stripe_client, store=PsycopgStore(conn)).run(
            since=since, dry_run=dry_run)
    return report.model_dump()
