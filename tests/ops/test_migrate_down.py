"""`migrate down` reverts the last applied migration through its paired down script, refuses
when it has none, and `status` shows which migrations are revertible."""

from __future__ import annotations

import shutil

import psycopg
import pytest

from ops.migrate import (
    MIGRATIONS_DIR,
    MigrationError,
    discover,
    main,
    migrate_down,
    migrate_up,
    migration_status,
)

# Everything a migration can create or grant in the project's schemas.
FINGERPRINT = """
select 'rel ' || c.relkind::text || ' ' || n.nspname || '.' || c.relname || ' ' || coalesce(c.relacl::text, '')
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname in ('public', 'private')
union all
select 'fn ' || p.oid::regprocedure::text || ' ' || coalesce(p.proacl::text, '') || ' '
       || md5(p.prosrc)
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname in ('public', 'private')
union all
select 'policy ' || schemaname || '.' || tablename || '.' || policyname from pg_policies
 where schemaname in ('public', 'private')
union all
select 'type ' || n.nspname || '.' || t.typname from pg_type t
  join pg_namespace n on n.oid = t.typnamespace
 where n.nspname in ('public', 'private') and t.typtype in ('e', 'd', 'c')
union all
select 'trigger ' || tgrelid::regclass::text || '.' || tgname from pg_trigger where not tgisinternal
order by 1
"""


def fingerprint(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(FINGERPRINT).fetchall()]


def copy_migrations(migrations, folder):
    (folder / "down").mkdir(parents=True)
    for migration in migrations:
        shutil.copy2(migration.path, folder / migration.path.name)
        if migration.revertible:
            shutil.copy2(migration.down_path, folder / "down" / migration.path.name)
    return folder


def test_up_down_up_on_a_fresh_database_restores_the_exact_schema(database_factory, tmp_path) -> None:
    # The project's migrations up to the newest one with a down script (later ones may have none).
    migrations = discover()
    newest = max(i for i, m in enumerate(migrations) if m.revertible)
    migrations = migrations[: newest + 1]
    trailing = []
    for migration in reversed(migrations):
        if not migration.revertible:
            break
        trailing.append(migration)
    folder = copy_migrations(migrations, tmp_path / "project")
    url = database_factory(migrate=False)
    migrate_up(url, folder)
    full = fingerprint(url)

    reverted = [migrate_down(url, folder) for _ in trailing]

    assert reverted == [m.version for m in trailing]
    with pytest.raises(MigrationError, match="no down script"):
        migrate_down(url, folder)
    # Reverting leaves exactly what applying only the earlier migrations gives.
    earlier = copy_migrations(migrations[: len(migrations) - len(trailing)], tmp_path / "earlier")
    reference = database_factory(migrate=False)
    migrate_up(reference, earlier)
    assert fingerprint(url) == fingerprint(reference)
    states = {v: s for v, _, s in migration_status(url, folder)}
    assert [states[v] for v in reverted] == ["pending"] * len(reverted)

    assert migrate_up(url, folder) == [m.version for m in reversed(trailing)]
    assert fingerprint(url) == full


def test_down_refuses_a_migration_without_a_down_script(database_factory, tmp_path) -> None:
    folder = tmp_path / "migrations"
    (folder / "down").mkdir(parents=True)
    (folder / "20260101000000_create_a.sql").write_text("create table public.a (id int);")
    (folder / "20260101000100_create_b.sql").write_text("create table public.b (id int);")
    (folder / "down" / "20260101000100_create_b.sql").write_text("drop table public.b;")
    url = database_factory(migrate=False)
    migrate_up(url, folder)

    assert migrate_down(url, folder) == "20260101000100"
    with pytest.raises(MigrationError, match="no down script"):
        migrate_down(url, folder)
    with psycopg.connect(url) as conn:
        assert conn.execute("select to_regclass('public.a') is not null,"
                            " to_regclass('public.b') is null").fetchone() == (True, True)


def test_a_failing_down_script_changes_nothing(database_factory, tmp_path) -> None:
    folder = tmp_path / "migrations"
    (folder / "down").mkdir(parents=True)
    (folder / "20260101000000_create_a.sql").write_text("create table public.a (id int);")
    (folder / "down" / "20260101000000_create_a.sql").write_text(
        "drop table public.a;\ndrop table public.does_not_exist;")
    url = database_factory(migrate=False)
    migrate_up(url, folder)

    with pytest.raises(MigrationError, match="statement 2 failed"):
        migrate_down(url, folder)

    assert [s for _, _, s in migration_status(url, folder)] == ["applied"]
    with psycopg.connect(url) as conn:
        assert conn.execute("select to_regclass('public.a') is not null").fetchone() == (True,)


def test_down_refuses_when_nothing_is_applied_or_the_file_changed(database_factory, tmp_path) -> None:
    folder = tmp_path / "migrations"
    (folder / "down").mkdir(parents=True)
    up = folder / "20260101000000_create_a.sql"
    up.write_text("create table public.a (id int);")
    (folder / "down" / up.name).write_text("drop table public.a;")
    url = database_factory(migrate=False)
    with pytest.raises(MigrationError, match="no migration is applied"):
        migrate_down(url, folder)
    migrate_up(url, folder)
    up.write_text("create table public.a (id bigint);")
    with pytest.raises(MigrationError, match="changed after it ran"):
        migrate_down(url, folder)


def test_cli_status_marks_revertible_migrations_and_down_reverts(database_factory, capsys) -> None:
    url = database_factory(migrate=True)
    assert main(["status", "--database-url", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    revertible = [line for line in lines if line.endswith("(revertible)")]
    assert any("create_queue_health" in line for line in revertible)
    assert not any("create_users" in line for line in revertible)

    last = discover(MIGRATIONS_DIR)[-1]
    expected = 0 if last.revertible else 2
    assert main(["down", "--database-url", url]) == expected
