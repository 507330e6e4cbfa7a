"""Who runs operator commands, and the record of what they ran (`private.operator_actions`).

Every `python -m ops.admin` command names its operator (`--operator`, else `MIMIVIBE_OPERATOR`)
and a reason (`--reason`); a command without them is refused before it touches anything. The
record is written, with the command and its arguments (secrets and connection strings left
out), before the command runs, so a command whose record cannot be written does not run; its
outcome (exit code, error) is added when it ends, however it ends.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

OPERATOR_ENV = "MIMIVIBE_OPERATOR"
# Argument names whose values never reach the record.
_SECRET_ARGUMENT = re.compile(r"key|secret|token|password|database_url|dsn", re.IGNORECASE)
_NOT_ARGUMENTS = {"operator", "reason", "command", "json"}


class OperatorRequired(ValueError):
    """The operator or the reason is missing; the message says which."""


@dataclass
class Action:
    """One recorded command; `finish` sets its outcome once."""

    id: int
    operator: str
    command: str
    exit_code: int | None = field(default=None)


def operator_identity(option: str | None, environ: Mapping[str, str] = os.environ) -> str:
    identity = (option or environ.get(OPERATOR_ENV) or "").strip()
    if not identity:
        raise OperatorRequired(
            f"who is running this? pass --operator NAME or set {OPERATOR_ENV}")
    return identity


def require_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise OperatorRequired("why? pass --reason TEXT (it is recorded with the command)")
    return text


def recorded_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The command's arguments as recorded: no secrets, no connection strings."""
    return {k: v for k, v in arguments.items()
            if k not in _NOT_ARGUMENTS and not _SECRET_ARGUMENT.search(k)}


@contextmanager
def recorded(database_url: str, *, operator: str, reason: str, command: str,
             arguments: Mapping[str, Any]) -> Iterator[Action]:
    """Record the command before it runs and its outcome after; yields the action (set
    `exit_code` to what the command returns; an exception is recorded as exit code 2)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into private.operator_actions (operator, reason, command, arguments)"
            " values (%s, %s, %s, %s::jsonb) returning id",
            (operator, reason, command,
             json.dumps(recorded_arguments(arguments), default=str)),
        ).fetchone()
        assert row is not None
        action = Action(id=int(row[0]), operator=operator, command=command)
        error: str | None = None
        try:
            yield action
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            action.exit_code = 2
            raise
        finally:
            conn.execute(
                "update private.operator_actions set finished_at = now(), exit_code = %s,"
                " error = %s where id = %s",
                (action.exit_code if action.exit_code is not None else 0, error, action.id))


def history(database_url: str, limit: int = 50) -> list[dict[str, Any]]:
    """The newest recorded actions (as the owner; nobody else can read them)."""
    from psycopg.rows import dict_row

    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        rows = conn.execute(
            "select id, operator, reason, command, arguments, started_at, finished_at,"
            " exit_code, error from private.operator_actions order by id desc limit %s",
            (limit,)).fetchall()
    return [dict(r) for r in rows]
