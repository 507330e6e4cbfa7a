"""Apply the Supabase migrations in `supabase/migrations/` to a PostgreSQL database.

History lives where the Supabase CLI keeps it (`supabase_migrations.schema_migrations`: version,
name, statements), so `supabase db push` and `supabase migration list` agree with this command.
Each pending migration runs in its own transaction together with its history row. A migration
already applied whose file no longer matches its recorded statements is reported as `changed`
and `up` refuses to run until that is resolved: migrations are fixed forward, never edited.

A migration may carry a paired down script, `down/<same file name>` next to it. `down` reverts
the last applied migration (its down script and the removal of its history row, in one
transaction) when it has one, and refuses when it has not; `status` marks the revertible ones.

    python -m ops.migrate up|down|status [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg

from ops.sqlsplit import split_statements

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = ROOT / "supabase" / "migrations"
STACK_FILE = ROOT / ".local" / "stack.json"
DOWN_DIR = "down"

# File names as the Supabase CLI reads them: <digits>_<name>.sql
_FILE_PATTERN = re.compile(r"^([0-9]+)_(.*)\.sql$")
# One runner at a time per database; an arbitrary constant key ("mvmigrat").
_ADVISORY_LOCK_KEY = 0x6D766D6967726174

_HISTORY_DDL = (
    "create schema if not exists supabase_migrations",
    "create table if not exists supabase_migrations.schema_migrations"
    " (version text not null primary key)",
    "alter table supabase_migrations.schema_migrations add column if not exists statements text[]",
    "alter table supabase_migrations.schema_migrations add column if not exists name text",
)

State = Literal["applied", "pending", "changed"]


class MigrationError(RuntimeError):
    """A migration could not be applied, or the history disagrees with the files."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def statements(self) -> list[str]:
        return split_statements(self.path.read_text(encoding="utf-8"))

    @property
    def down_path(self) -> Path:
        return self.path.parent / DOWN_DIR / self.path.name

    @property
    def revertible(self) -> bool:
        return self.down_path.is_file()


def discover(migrations_dir: Path | None = None) -> list[Migration]:
    """The migration files in version order (other files, such as a `down/` folder, ignored)."""
    folder = migrations_dir or MIGRATIONS_DIR
    found: dict[str, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_PATTERN.match(path.name)
        if not match:
            continue
        version, name = match.groups()
        if version in found:
            raise MigrationError(f"two migrations share version {version}")
        found[version] = Migration(version, name, path)
    return [found[v] for v in sorted(found, key=int)]


def _ensure_history(conn: psycopg.Connection) -> None:
    with conn.transaction():
        for ddl in _HISTORY_DDL:
            conn.execute(ddl)


def _recorded(conn: psycopg.Connection) -> dict[str, list[str] | None]:
    rows = conn.execute(
        "select version, statements from supabase_migrations.schema_migrations"
    ).fetchall()
    return {version: statements for version, statements in rows}


def _states(
    migrations: Sequence[Migration], recorded: dict[str, list[str] | None]
) -> list[tuple[str, str, State]]:
    result: list[tuple[str, str, State]] = []
    for m in migrations:
        if m.version not in recorded:
            result.append((m.version, m.name, "pending"))
        elif recorded[m.version] is not None and recorded[m.version] != m.statements:
            result.append((m.version, m.name, "changed"))
        else:
            result.append((m.version, m.name, "applied"))
    return result


def migration_status(
    database_url: str, migrations_dir: Path | None = None
) -> list[tuple[str, str, State]]:
    """(version, name, state) of every migration file, in order."""
    migrations = discover(migrations_dir)
    with psycopg.connect(database_url, autocommit=True) as conn:
        _ensure_history(conn)
        return _states(migrations, _recorded(conn))


def migrate_up(database_url: str, migrations_dir: Path | None = None) -> list[str]:
    """Apply every pending migration in order; return the versions applied."""
    migrations = discover(migrations_dir)
    applied: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        _ensure_history(conn)
        conn.execute("select pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        try:
            states = _states(migrations, _recorded(conn))
            changed = [f"{v}_{n}" for v, n, s in states if s == "changed"]
            if changed:
                raise MigrationError(
                    "applied migrations were edited after they ran (fix forward with a new "
                    f"migration instead): {', '.join(changed)}"
                )
            pending = {v for v, _, s in states if s == "pending"}
            for migration in migrations:
                if migration.version in pending:
                    _apply(conn, migration)
                    applied.append(migration.version)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,))
    return applied


def migrate_down(database_url: str, migrations_dir: Path | None = None) -> str:
    """Revert the last applied migration with its down script; return its version.

    Refuses (MigrationError) when nothing is applied, when the last applied migration has no
    file or no down script, or when its file changed after it ran.
    """
    migrations = {m.version: m for m in discover(migrations_dir)}
    with psycopg.connect(database_url, autocommit=True) as conn:
        _ensure_history(conn)
        conn.execute("select pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        try:
            recorded = _recorded(conn)
            if not recorded:
                raise MigrationError("no migration is applied")
            version = max(recorded, key=int)
            migration = migrations.get(version)
            if migration is None:
                raise MigrationError(f"the last applied migration {version} has no file here")
            if recorded[version] is not None and recorded[version] != migration.statements:
                raise MigrationError(
                    f"{migration.path.name} changed after it ran; refusing to revert it"
                )
            if not migration.revertible:
                raise MigrationError(
                    f"{migration.path.name} has no down script ({DOWN_DIR}/{migration.path.name})"
                    "; revert it with a new migration instead"
                )
            _revert(conn, migration)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,))
    return version


def _revert(conn: psycopg.Connection, migration: Migration) -> None:
    statements = split_statements(migration.down_path.read_text(encoding="utf-8"))
    try:
        with conn.transaction():
            for index, statement in enumerate(statements, start=1):
                try:
                    conn.execute(statement)
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"{DOWN_DIR}/{migration.path.name}: statement {index} failed: {exc}"
                    ) from exc
            conn.execute(
                "delete from supabase_migrations.schema_migrations where version = %s",
                (migration.version,),
            )
    finally:
        conn.execute("reset all")


def revertible_versions(migrations_dir: Path | None = None) -> set[str]:
    """Versions of the migrations that carry a down script."""
    return {m.version for m in discover(migrations_dir) if m.revertible}


def _apply(conn: psycopg.Connection, migration: Migration) -> None:
    statements = migration.statements
    try:
        with conn.transaction():
            for index, statement in enumerate(statements, start=1):
                try:
                    conn.execute(statement)
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"{migration.path.name}: statement {index} failed: {exc}"
                    ) from exc
            conn.execute(
                "insert into supabase_migrations.schema_migrations (version, name, statements)"
                " values (%s, %s, %s)",
                (migration.version, migration.name, statements),
            )
    finally:
        # A migration may change session settings (search_path, role); start the next clean.
        conn.execute("reset all")


def default_database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    if STACK_FILE.exists():
        stack = json.loads(STACK_FILE.read_text(encoding="utf-8"))
        if stack.get("database_url"):
            return str(stack["database_url"])
    raise MigrationError("no database: set DATABASE_URL or start the local stack")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.migrate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--database-url", help="default: $DATABASE_URL, else .local/stack.json")
    parser.add_argument("--migrations-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        url = args.database_url or default_database_url()
        if args.command == "up":
            versions = migrate_up(url, args.migrations_dir)
            print(f"applied {len(versions)} migration(s)" + "".join(f"\n  {v}" for v in versions))
            return 0
        if args.command == "down":
            version = migrate_down(url, args.migrations_dir)
            print(f"reverted {version}")
            return 0
        rows = migration_status(url, args.migrations_dir)
        revertible = revertible_versions(args.migrations_dir)
        for version, name, state in rows:
            mark = "  (revertible)" if version in revertible else ""
            print(f"{state:8} {version}_{name}{mark}")
        return 1 if any(state == "changed" for _, _, state in rows) else 0
    except (MigrationError, psycopg.OperationalError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
