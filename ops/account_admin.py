"""Operator commands for the users' data rights, for requests that arrive by e-mail:

    python -m ops.admin export-user USER_ID                                  [--out FILE]
    python -m ops.admin --operator NAME --reason TEXT erase-user USER_ID
    python -m ops.admin reapply-erasures --from DATABASE_URL

`export-user` runs `public.export_account()` as that user (role authenticated with the user's
claims, the way PostgREST runs the app's call), so RLS decides what is theirs exactly as for
`GET /account/export`. `erase-user` runs `public.erase_account(...)` as service_role, the same
transaction as `DELETE /account`, recording `operator:<NAME>` and the reason; the Stripe and
Redis cleanup is left due for the job consumer's sweep, which runs it within a minute.
`reapply-erasures` runs after restoring a backup: every account erased in a later copy of the
database (`private.account_erasures` there) is erased again in the restored one.
"""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row


def _user_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a user id: {value!r}") from exc


def export_user(database_url: str, user_id: str) -> dict[str, Any]:
    from ops.admin import AdminError

    claims = json.dumps({"sub": user_id, "role": "authenticated", "aud": "authenticated"})
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        exists = conn.execute("select erased_at from public.users where id = %s",
                              (user_id,)).fetchone()
        if exists is None:
            raise AdminError(f"no user {user_id}")
        with conn.transaction():
            conn.execute("set local role authenticated")
            conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
            row = conn.execute("select public.export_account() as e").fetchone()
    assert row is not None
    return dict(row["e"])


def erase_user(database_url: str, user_id: str, operator: str, reason: str) -> dict[str, Any]:
    from ops.admin import _as_service, _connect

    with _connect(database_url) as conn:
        row = _as_service(conn, "select public.erase_account(%s::uuid, %s, %s) as r",
                          (user_id, f"operator:{operator}", reason))
    return {**dict(row["r"]), "cleanup": "due for the job consumer's sweep"}


def reapply_erasures(database_url: str, source_url: str) -> dict[str, Any]:
    """Erase again, in a restored database, every account erased in `source_url` (a later copy
    of the same database): a backup taken before an erasure must not bring the person back.
    Accounts already erased, or unknown to the restored copy, are counted and left alone."""
    from ops.admin import _as_service, _connect

    with psycopg.connect(source_url, autocommit=True, row_factory=dict_row) as source:
        erasures = source.execute("select user_id, requested_by, reason from"
                                  " private.account_erasures order by erased_at").fetchall()
    counts = {"erasures": len(erasures), "applied": 0, "already_erased": 0, "unknown_users": 0}
    with _connect(database_url) as conn:
        for erasure in erasures:
            if conn.execute("select 1 from public.users where id = %s",
                            (erasure["user_id"],)).fetchone() is None:
                counts["unknown_users"] += 1
                continue
            row = _as_service(conn, "select public.erase_account(%s, %s, %s) as r",
                              (erasure["user_id"], erasure["requested_by"], erasure["reason"]))
            counts["already_erased" if row["r"]["already_erased"] else "applied"] += 1
    return counts


def _export(url: str, args: argparse.Namespace) -> dict[str, Any]:
    document = export_user(url, args.user_id)
    if args.out is None:
        return document
    args.out.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str), "utf-8")
    return {"user_id": args.user_id, "written": str(args.out)}


def _erase(url: str, args: argparse.Namespace) -> dict[str, Any]:
    return erase_user(url, args.user_id, args.operator, args.reason)


def add_commands(sub: Any) -> None:
    """Register both subcommands; each carries its own runner (`args.run(url, args)`)."""
    export = sub.add_parser("export-user", help="everything stored about a user, as JSON")
    export.add_argument("user_id", type=_user_id)
    export.add_argument("--out", type=Path, help="write the document to this file")
    export.set_defaults(run=_export, force_json=True)
    erase = sub.add_parser("erase-user", help="erase a user's account (DELETE /account)")
    erase.add_argument("user_id", type=_user_id)
    erase.set_defaults(run=_erase)
    again = sub.add_parser("reapply-erasures",
                           help="after a restore: erase again what a later copy erased")
    again.add_argument("--from", dest="source", required=True,
                       help="database URL of a later copy (e.g. the database before the restore)")
    again.set_defaults(run=lambda url, args: reapply_erasures(url, args.source))
