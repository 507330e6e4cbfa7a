"""The migration command: order, transactions, Supabase CLI history, edited files refused."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from ops.migrate import MIGRATIONS_DIR, MigrationError, discover, main, migrate_up, migration_status
from ops.sqlsplit import split_statements
from tests.db.conftest import connect


def test_migrations_apply_in_order_on_an_empty_database_and_only_once(database_factory):
    url = database_factory(migrate=False)
    versions = [m.version for m in discover()]
    assert versions == sorted(versions, key=int)
    assert migrate_up(url) == versions
    assert migrate_up(url) == []
    assert {state for _, _, state in migration_status(url)} == {"applied"}
    with connect(url) as conn:
        server = conn.execute("show server_version_num").fetchone()
        assert server is not None and int(server[0]) >= 150000
    # With MIMIVIBE_PG_BIN (e.g. Debian's postgresql-15) the session really runs that server.
    bin_dir = os.environ.get("MIMIVIBE_PG_BIN")
    if bin_dir and not os.environ.get("DATABASE_URL"):
        version = subprocess.run(
            [str(Path(bin_dir) / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        match = re.search(r"\) (\d+)\.", version)
        assert match is not None, version
        assert int(server[0]) // 10000 == int(match.group(1))


def test_history_is_kept_in_the_supabase_cli_table(migrated_db):
    with connect(migrated_db) as conn:
        columns = conn.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_schema = 'supabase_migrations' and table_name = 'schema_migrations'"
            " order by ordinal_position"
        ).fetchall()
        row = conn.execute(
            "select name, statements from supabase_migrations.schema_migrations where version = %s",
            ("20261126000500",),
        ).fetchone()
    assert columns == [("version", "text"), ("statements", "ARRAY"), ("name", "text")]
    assert row is not None
    name, statements = row
    assert name == "create_users"
    assert statements == split_statements(
        (MIGRATIONS_DIR / "20261126000500_create_users.sql").read_text()
    )


def _copy_migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder)
    return folder


def test_an_edited_applied_migration_is_reported_and_refused(database_factory, tmp_path):
    folder = _copy_migrations(tmp_path)
    url = database_factory(migrate=False)
    migrate_up(url, folder)
    edited = folder / "20261126000200_create_enums.sql"
    edited.write_text(edited.read_text() + "\ncreate type public.extra as enum ('x');\n")
    (folder / "20261126009900_create_later.sql").write_text("create table public.later (id int);")
    states = {v: s for v, _, s in migration_status(url, folder)}
    assert states["20261126000200"] == "changed"
    assert states["20261126009900"] == "pending"
    with pytest.raises(MigrationError, match="20261126000200_create_enums"):
        migrate_up(url, folder)
    with connect(url) as conn:
        assert conn.execute("select to_regclass('public.later')").fetchone() == (None,)
    assert main(["status", "--database-url", url, "--migrations-dir", str(folder)]) == 1


def test_a_failing_migration_leaves_nothing_behind(database_factory, tmp_path):
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "20260101000000_create_a.sql").write_text("create table public.a (id int);")
    (folder / "20260101000100_create_b.sql").write_text(
        "create table public.b (id int);\ninsert into public.b values ('not a number');"
    )
    url = database_factory(migrate=False)
    with pytest.raises(MigrationError, match="statement 2"):
        migrate_up(url, folder)
    with connect(url) as conn:
        assert conn.execute("select to_regclass('public.a') is not null").fetchone() == (True,)
        assert conn.execute("select to_regclass('public.b')").fetchone() == (None,)
        assert conn.execute(
            "select version from supabase_migrations.schema_migrations"
        ).fetchall() == [("20260101000000",)]
    assert [s for _, _, s in migration_status(url, folder)] == ["applied", "pending"]


def test_cli_status_lists_applied_and_pending(database_factory, tmp_path, capsys):
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "20260101000000_create_a.sql").write_text("create table public.a (id int);")
    url = database_factory(migrate=False)
    assert main(["status", "--database-url", url, "--migrations-dir", str(folder)]) == 0
    assert main(["up", "--database-url", url, "--migrations-dir", str(folder)]) == 0
    (folder / "20260101000100_create_b.sql").write_text("create table public.b (id int);")
    assert main(["status", "--database-url", url, "--migrations-dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "pending  20260101000000_create_a" in out
    assert "applied  20260101000000_create_a" in out
    assert "pending  20260101000100_create_b" in out


def test_unreachable_database_is_a_clear_error_not_a_traceback(capsys):
    url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"
    with pytest.raises(psycopg.OperationalError):
        migrate_up(url)
    assert main(["up", "--database-url", url]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_statements_split_like_the_supabase_cli():
    script = (
        "-- a comment; with a semicolon\n"
        "create table t (v text default 'a;b');\n"
        "create function f() returns int language sql as $$ select 1; $$;\n"
        'create table "x;y" (id int);\n'
        "do $body$ begin perform 1; end $body$;\n"
        "/* block; /* nested; */ */ select 1\n"
    )
    assert split_statements(script) == [
        "-- a comment; with a semicolon\ncreate table t (v text default 'a;b')",
        "create function f() returns int language sql as $$ select 1; $$",
        'create table "x;y" (id int)',
        "do $body$ begin perform 1; end $body$",
        "/* block; /* nested; */ */ select 1",
    ]


def test_semicolons_inside_parentheses_atomic_bodies_and_after_a_backslash_do_not_split():
    script = (
        "create function f() returns int language sql\n"
        "begin atomic\n  select 1;\n  select case when true then 2 end;\nend;\n"
        "create rule r as on insert to t do also (insert into a values (1); insert into b values (2));\n"
        "select 1 \\; select 2;\n"
        "select a$$b;\n"
        "select $ก$ a;b $ก$;\n"
        "create function g() returns int begin  atomic -- c\n select 3; /* x */ END;\n"
    )
    assert split_statements(script) == [
        "create function f() returns int language sql\n"
        "begin atomic\n  select 1;\n  select case when true then 2 end;\nend",
        "create rule r as on insert to t do also (insert into a values (1); insert into b values (2))",
        "select 1 \\; select 2",
        "select a$$b",
        "select $ก$ a;b $ก$",
        "create function g() returns int begin  atomic -- c\n select 3; /* x */ END",
    ]


def test_a_migration_with_a_sql_standard_function_body_applies(database_factory, tmp_path):
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "20260101000000_create_f.sql").write_text(
        "create function public.f(x int) returns int language sql\n"
        "begin atomic\n  select case when x > 0 then x else 0 end;\nend;\n"
        "revoke all on function public.f(int) from public;\n"
    )
    url = database_factory(migrate=False)
    assert migrate_up(url, folder) == ["20260101000000"]
    with connect(url) as conn:
        assert conn.execute("select public.f(4), public.f(-1)").fetchone() == (4, 0)


def test_migrations_apply_as_a_non_superuser_owner_as_on_hosted_supabase(database_factory):
    # Hosted Supabase runs migrations as `postgres`, which is not a superuser (it has BYPASSRLS
    # and CREATEROLE) and carries the default privileges that open new public objects to the
    # API roles. Nothing may need more, and the result must still be closed to anon.
    url = database_factory(migrate=False)
    owner = "mimivibe_migration_owner"
    with connect(url) as conn:
        conn.execute(
            "do $$ begin"
            " if not exists (select 1 from pg_roles where rolname = 'mimivibe_migration_owner')"
            " then create role mimivibe_migration_owner nologin nosuperuser createrole bypassrls;"
            " end if; end $$"
        )
        database = conn.execute("select current_database()").fetchone()
        assert database is not None
        conn.execute(f'grant create on database "{database[0]}" to {owner}')
        conn.execute(f"grant create on schema public to {owner}")
        conn.execute(f"grant anon, authenticated, service_role to {owner}")
        for kind in ("tables", "sequences", "functions"):
            conn.execute(
                f"alter default privileges for role {owner} in schema public"
                f" grant all on {kind} to anon, authenticated, service_role"
            )
    separator = "&" if "?" in url else "?"
    as_owner = f"{url}{separator}options=-c%20role%3D{owner}"
    assert migrate_up(as_owner) == [m.version for m in discover()]
    with connect(url) as conn:
        owners = conn.execute(
            "select distinct pg_get_userbyid(c.relowner) from pg_class c"
            " where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'"
        ).fetchall()
        assert owners == [(owner,)]
        open_to_anon = conn.execute(
            "select c.relname from pg_class c where c.relnamespace = 'public'::regnamespace"
            " and c.relkind in ('r', 'S')"
            " and (has_table_privilege('anon', c.oid, 'select, insert, update, delete')"
            "   or has_table_privilege('authenticated', c.oid, 'insert, update, delete'))"
            " union all"
            " select p.proname from pg_proc p"
            " where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)"
            " and has_function_privilege('anon', p.oid, 'execute')"
        ).fetchall()
        assert open_to_anon == []
