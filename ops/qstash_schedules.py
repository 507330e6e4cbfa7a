"""Apply the QStash schedules declared in qstash/schedules.yml to Upstash (or the stand-in).

    python -m ops.qstash_schedules apply [--file qstash/schedules.yml] [--prune] [--dry-run]
    python -m ops.qstash_schedules list

Needs QSTASH_TOKEN (and QSTASH_URL for anything but https://qstash.upstash.io) and the
environment variable each schedule names as its destination (JOB_CONSUMER_URL). Every declared
schedule is created or updated under its id; `--prune` also deletes schedules whose id carries
the project prefix but are no longer declared. Schedules of other projects are never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILE = ROOT / "qstash" / "schedules.yml"
ID_PREFIX = "mimivibe-"


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^mimivibe-[a-z0-9-]+$")
    destination: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$", description="env var with the URL")
    cron: str = Field(min_length=9)
    body: dict[str, Any] = Field(default_factory=dict)
    retries: int = Field(default=3, ge=0, le=100)
    timeout: str | None = None
    # Also applied on the local stack, where every schedule fires every few seconds; false for
    # a schedule whose run would race the tests' deliberately held or lost events.
    local: bool = True


class ScheduleFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schedules: tuple[ScheduleSpec, ...]


    def for_local_stack(self) -> ScheduleFile:
        return ScheduleFile(schedules=tuple(s for s in self.schedules if s.local))


class PlanError(ValueError):
    """The declarations or the environment they need are incomplete."""


def load(path: Path = DEFAULT_FILE) -> ScheduleFile:
    import yaml

    return ScheduleFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def destinations(declared: ScheduleFile, environ: Mapping[str, str]) -> dict[str, str]:
    """Schedule id → destination URL, from the environment variables the file names."""
    out: dict[str, str] = {}
    for spec in declared.schedules:
        url = environ.get(spec.destination, "").strip()
        if not url.startswith(("https://", "http://")):
            raise PlanError(f"{spec.destination} must hold the URL for schedule {spec.id}")
        out[spec.id] = url
    return out


def apply(client: Any, declared: ScheduleFile, urls: Mapping[str, str], *, prune: bool = False,
          dry_run: bool = False) -> list[str]:
    """Create or update every declared schedule (and prune stale ones); returns what was done."""
    actions: list[str] = []
    existing = {s.schedule_id: s for s in client.schedule.list()}
    for spec in declared.schedules:
        verb = "update" if spec.id in existing else "create"
        actions.append(f"{verb} {spec.id}: {spec.cron} -> {urls[spec.id]}")
        if not dry_run:
            client.schedule.create_json(
                destination=urls[spec.id], cron=spec.cron, body=spec.body,
                retries=spec.retries, timeout=spec.timeout, schedule_id=spec.id,
            )
    if prune:
        wanted = {spec.id for spec in declared.schedules}
        for schedule_id in sorted(existing):
            if schedule_id.startswith(ID_PREFIX) and schedule_id not in wanted:
                actions.append(f"delete {schedule_id}")
                if not dry_run:
                    client.schedule.delete(schedule_id)
    return actions


def _client() -> Any:
    from pydantic import SecretStr

    from shared.qstash_client import build_qstash

    token = os.environ.get("QSTASH_TOKEN")
    if not token:
        raise PlanError("QSTASH_TOKEN is not set")
    return build_qstash(SecretStr(token), os.environ.get("QSTASH_URL", "https://qstash.upstash.io"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.qstash_schedules", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("apply", "list"))
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--prune", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    try:
        client = _client()
        if args.command == "list":
            for s in client.schedule.list():
                print(json.dumps({"id": s.schedule_id, "cron": s.cron,
                                  "destination": s.destination}))
            return 0
        declared = load(args.file)
        for line in apply(client, declared, destinations(declared, os.environ),
                          prune=args.prune, dry_run=args.dry_run):
            print(("would " if args.dry_run else "") + line)
    except PlanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
