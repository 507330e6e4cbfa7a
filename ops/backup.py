"""Logical backups of the project's database: take, restore into an empty database, verify.

    python -m ops.backup take    --out DIR        [--database-url URL]
    python -m ops.backup restore MANIFEST         --database-url URL
    python -m ops.backup verify  MANIFEST         [--database-url URL]

A backup is a `pg_dump` custom-format archive of the project's schemas (`public`, `private`,
`supabase_migrations`) plus a manifest (`<name>.manifest.json`): the archive's SHA-256 and size,
the row count of every table, and the applied migration versions. The counts are taken in the
very snapshot pg_dump dumps (`pg_export_snapshot` + `--snapshot`), so they match the archive
exactly even while the database is being written to.

Supabase's own schemas (`auth`, `extensions`, roles) are not in the archive: a restore target is
an empty Supabase project (locally: a bootstrapped database) that has them. `restore` checks
the checksum first and refuses a target that already has project tables; it runs in one
transaction. `verify` compares row counts with the manifest, requires `wallet_audit()` to be
empty and every migration file to be applied and unchanged.

pg_dump/pg_restore must be at least the server's major version: `MIMIVIBE_PG_BIN`, then
`/usr/lib/postgresql/<major>/bin`, then the embedded PostgreSQL's binaries, then PATH.
"""

# The subprocess calls run PostgreSQL client tools resolved by pg_tool(), with argument lists.

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ops.migrate import MigrationError, default_database_url, migration_status

SCHEMAS = ("public", "private", "supabase_migrations")
MANIFEST_SUFFIX = ".manifest.json"
FORMAT = "pg_dump-custom"


class BackupError(RuntimeError):
    """A backup, restore or verification failed; the message says why."""


@dataclass(frozen=True)
class Verification:
    ok: bool
    problems: list[str]


def _server_major(conn: psycopg.Connection) -> int:
    return int(str(conn.execute("show server_version_num").fetchone()[0])) // 10000  # type: ignore[index]


def _tool_major(path: Path) -> int | None:
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True,  # noqa: S603
                             timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\)\s+(\d+)", out)
    return int(match.group(1)) if match else None


def _candidates(name: str, major: int) -> list[Path]:
    found: list[Path] = []
    if os.environ.get("MIMIVIBE_PG_BIN"):
        found.append(Path(os.environ["MIMIVIBE_PG_BIN"]) / name)
    found.append(Path(f"/usr/lib/postgresql/{major}/bin") / name)
    try:
        from devstack.postgres import embedded_bin_dir

        found.append(embedded_bin_dir() / name)
    except ImportError:
        pass
    on_path = shutil.which(name)
    if on_path:
        found.append(Path(on_path))
    return found


def pg_tool(name: str, server_major: int) -> Path:
    """The first `name` binary whose major version can handle this server's dumps."""
    for path in _candidates(name, server_major):
        if path.exists():
            tool_major = _tool_major(path)
            if tool_major is not None and tool_major >= server_major:
                return path
    raise BackupError(
        f"no {name} of PostgreSQL {server_major} or newer found (set MIMIVIBE_PG_BIN)"
    )


def _tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "select format('%%I.%%I', n.nspname, c.relname) from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'p') and n.nspname = any(%s) order by 1",
        (list(SCHEMAS),),
    ).fetchall()
    return [r[0] for r in rows]


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in _tables(conn):
        # Names come from the catalog, quoted by format('%I').
        counts[table] = int(conn.execute(f"select count(*) from {table}").fetchone()[0])  # type: ignore[index]
    return counts


def _applied_versions(conn: psycopg.Connection) -> list[str]:
    exists = conn.execute(
        "select to_regclass('supabase_migrations.schema_migrations') is not null"
    ).fetchone()
    if not exists or not exists[0]:
        return []
    rows = conn.execute(
        "select version from supabase_migrations.schema_migrations order by version"
    ).fetchall()
    return [r[0] for r in rows]


def _client(database_url: str) -> tuple[str, dict[str, str]]:
    """A conninfo without the password, and an environment carrying it (not in `ps` output)."""
    params = conninfo_to_dict(database_url)
    env = dict(os.environ)
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**{k: str(v) for k, v in params.items()}), env


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _database_name(conn: psycopg.Connection) -> str:
    return str(conn.execute("select current_database()").fetchone()[0])  # type: ignore[index]


def _private_file(path: Path) -> None:
    """Create `path` empty and readable by its owner only (0600), whatever the umask: a backup
    holds every user's personal data and the whole ledger."""
    path.unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.chmod(path, 0o600)


def take_backup(database_url: str, out_dir: Path, name: str | None = None) -> Path:
    """Dump the project's schemas; return the manifest's path. The archive and the manifest
    are created 0600 (a new folder 0700) before anything is written to them."""
    if not out_dir.exists():
        out_dir.mkdir(parents=True, mode=0o700)
    with psycopg.connect(database_url, autocommit=True) as conn:
        major = _server_major(conn)
        pg_dump = pg_tool("pg_dump", major)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        base = name or f"{_database_name(conn)}-{stamp}"
        archive = out_dir / f"{base}.dump"
        # The counts and the dump read one snapshot: it stays valid while this transaction lives.
        with conn.transaction():
            conn.execute("set transaction isolation level repeatable read, read only")
            snapshot = str(conn.execute("select pg_export_snapshot()").fetchone()[0])  # type: ignore[index]
            counts = row_counts(conn)
            versions = _applied_versions(conn)
            args = [str(pg_dump), "--format=custom", "--no-owner", f"--snapshot={snapshot}",
                    f"--file={archive}"]
            args += [f"--schema={schema}" for schema in SCHEMAS]
            conninfo, env = _client(database_url)
            args.append(f"--dbname={conninfo}")
            _private_file(archive)  # pg_dump truncates it and keeps its mode
            result = subprocess.run(args, capture_output=True, text=True, env=env, check=False)  # noqa: S603
            if result.returncode != 0:
                archive.unlink(missing_ok=True)
                raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
        manifest = {
            "format": FORMAT,
            "archive": archive.name,
            "sha256": sha256_file(archive),
            "bytes": archive.stat().st_size,
            "created_at": datetime.now(UTC).isoformat(),
            "database": _database_name(conn),
            "server_major": major,
            "schemas": list(SCHEMAS),
            "row_counts": counts,
            "migrations": versions,
        }
    manifest_path = out_dir / f"{base}{MANIFEST_SUFFIX}"
    _private_file(manifest_path)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", "utf-8")
    return manifest_path


def load_manifest(manifest_path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"cannot read manifest {manifest_path}: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{manifest_path} is not a manifest of this tool")
    return dict(manifest)


def check_archive(manifest_path: Path) -> Path:
    """The archive next to the manifest, after its size and checksum matched."""
    manifest = load_manifest(manifest_path)
    archive = manifest_path.parent / manifest["archive"]
    if not archive.exists():
        raise BackupError(f"archive {archive.name} is missing")
    if archive.stat().st_size != manifest["bytes"] or sha256_file(archive) != manifest["sha256"]:
        raise BackupError(f"archive {archive.name} does not match its manifest's checksum")
    return archive


def restore_backup(manifest_path: Path, database_url: str) -> None:
    """Restore into an empty (Supabase-bootstrapped) database, in one transaction."""
    archive = check_archive(manifest_path)
    with psycopg.connect(database_url, autocommit=True) as conn:
        existing = _tables(conn)
        if existing:
            raise BackupError(
                f"target database is not empty ({len(existing)} project tables, e.g. {existing[0]})"
            )
        pg_restore = pg_tool("pg_restore", _server_major(conn))
        present = {r[0] for r in conn.execute(
            "select nspname from pg_namespace where nspname = any(%s)", (list(SCHEMAS),)
        ).fetchall()}
    # Schemas the target already has (public always does) are not created again: their
    # CREATE SCHEMA entries are left out of the archive's table of contents.
    listing = subprocess.run([str(pg_restore), "--list", str(archive)], capture_output=True,  # noqa: S603
                             text=True, check=False)
    if listing.returncode != 0:
        raise BackupError(f"pg_restore --list failed: {listing.stderr.strip()}")
    skip = tuple(f"SCHEMA - {schema} " for schema in present)
    kept = [line for line in listing.stdout.splitlines()
            if not any(marker in line + " " for marker in skip)]
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False, encoding="utf-8") as f:
        f.write("\n".join(kept) + "\n")
    toc = Path(f.name)
    conninfo, env = _client(database_url)
    args = [str(pg_restore), "--no-owner", "--single-transaction", "--exit-on-error",
            f"--use-list={toc}", f"--dbname={conninfo}", str(archive)]
    try:
        result = subprocess.run(args, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    finally:
        toc.unlink(missing_ok=True)
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.strip()}")


def verify_backup(manifest_path: Path, database_url: str) -> Verification:
    """Compare a restored database with the manifest and check its invariants."""
    manifest = load_manifest(manifest_path)
    problems: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        counts = row_counts(conn)
        expected: dict[str, int] = manifest["row_counts"]
        for table in sorted(set(expected) | set(counts)):
            if expected.get(table) != counts.get(table):
                problems.append(
                    f"{table}: {counts.get(table, 'missing')} rows, manifest says "
                    f"{expected.get(table, 'missing')}"
                )
        if _applied_versions(conn) != manifest["migrations"]:
            problems.append("applied migrations differ from the manifest")
        audit = conn.execute("select count(*) from public.wallet_audit()").fetchone()
        if audit and audit[0]:
            problems.append(f"wallet_audit() reports {audit[0]} problem(s)")
    try:
        states = migration_status(database_url)
    except MigrationError as exc:
        problems.append(str(exc))
    else:
        stale = [f"{v}_{n} {s}" for v, n, s in states if s != "applied"]
        if stale:
            problems.append("migrations not current: " + ", ".join(stale))
    return Verification(ok=not problems, problems=problems)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.backup", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    take = sub.add_parser("take", help="dump the database and write a manifest")
    take.add_argument("--out", type=Path, required=True)
    take.add_argument("--name", help="base file name (default: <database>-<UTC time>)")
    restore = sub.add_parser("restore", help="restore a backup into an empty database")
    restore.add_argument("manifest", type=Path)
    verify = sub.add_parser("verify", help="check a restored database against a manifest")
    verify.add_argument("manifest", type=Path)
    for command in (take, restore, verify):
        command.add_argument("--database-url", help="default: $DATABASE_URL, else .local/stack.json")
    args = parser.parse_args(argv)
    try:
        url = args.database_url or default_database_url()
        if args.command == "take":
            manifest_path = take_backup(url, args.out, args.name)
            manifest = load_manifest(manifest_path)
            print(f"backup {manifest_path} ({manifest['bytes']} bytes, sha256 {manifest['sha256']},"
                  f" {sum(manifest['row_counts'].values())} rows)")
            return 0
        if args.command == "restore":
            restore_backup(args.manifest, url)
            print(f"restored {args.manifest}")
            return 0
        result = verify_backup(args.manifest, url)
        for problem in result.problems:
            print(f"problem: {problem}")
        print("verified" if result.ok else "verification FAILED")
        return 0 if result.ok else 1
    except (BackupError, MigrationError, psycopg.OperationalError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
