"""The local-only bootstrap gives a plain PostgreSQL what hosted Supabase has: the API roles,
auth.uid()/auth.role()/auth.jwt() reading PostgREST's claims, and pg_trgm in `extensions`."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from psycopg.rows import dict_row

from devstack.database import apply_bootstrap
from tests.db.conftest import connect, one


@pytest.fixture(scope="module")
def bare_url(database_factory: Any) -> str:
    """A bootstrapped database with no migrations, bootstrapped twice (it must be idempotent)."""
    url = database_factory(migrate=False)
    apply_bootstrap(url)
    return url


@pytest.fixture
def conn(bare_url: str):
    with connect(bare_url, row_factory=dict_row) as c:
        yield c


def test_api_roles_exist_as_supabase_defines_them(conn):
    roles = {
        r["rolname"]: r
        for r in conn.execute(
            "select rolname, rolcanlogin, rolinherit, rolbypassrls from pg_roles"
            " where rolname in ('anon', 'authenticated', 'service_role', 'authenticator')"
        ).fetchall()
    }
    assert set(roles) == {"anon", "authenticated", "service_role", "authenticator"}
    assert [n for n, r in roles.items() if r["rolbypassrls"]] == ["service_role"]
    assert [n for n, r in roles.items() if r["rolcanlogin"]] == ["authenticator"]
    # The authenticator switches to a role per request and has no rights of its own.
    assert not roles["authenticator"]["rolinherit"]
    for role in ("anon", "authenticated", "service_role"):
        assert one(conn, "select pg_has_role('authenticator', %s, 'member') as ok", (role,))["ok"]


def test_auth_functions_read_the_claims_postgrest_sets(conn):
    sub = uuid.uuid4()
    claims = {"sub": str(sub), "role": "authenticated", "email": "a@example.com", "aud": "x"}
    with conn.transaction(force_rollback=True):
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        row = one(
            conn,
            "select auth.uid() as uid, auth.role() as role, auth.email() as email,"
            " auth.jwt() as jwt",
        )
    assert (row["uid"], row["role"], row["email"]) == (sub, "authenticated", "a@example.com")
    assert row["jwt"] == claims


def test_auth_functions_prefer_the_legacy_per_claim_settings(conn):
    legacy, current = uuid.uuid4(), uuid.uuid4()
    with conn.transaction(force_rollback=True):
        conn.execute("select set_config('request.jwt.claim.sub', %s, true)", (str(legacy),))
        conn.execute("select set_config('request.jwt.claim.role', 'service_role', true)")
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": str(current), "role": "authenticated"}),),
        )
        row = one(conn, "select auth.uid() as uid, auth.role() as role")
    assert (row["uid"], row["role"]) == (legacy, "service_role")


def test_auth_functions_read_no_claims_as_null_after_a_request_ended(conn):
    with conn.transaction():
        conn.execute("select set_config('request.jwt.claims', %s, true)", ('{"sub": "x"}',))
    # The setting now exists as '' in this session: it must read as "no claims".
    row = one(conn, "select auth.uid() as uid, auth.role() as role, auth.jwt() as jwt")
    assert (row["uid"], row["role"], row["jwt"]) == (None, None, None)


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
def test_api_roles_may_call_the_auth_functions_and_use_extensions(conn, role):
    with conn.transaction(force_rollback=True):
        conn.execute(f"set local role {role}")
        row = one(
            conn,
            "select auth.uid() is null as no_user, extensions.similarity('ความรัก', 'รัก') > 0 as trgm",
        )
    assert (row["no_user"], row["trgm"]) == (True, True)


def test_pg_trgm_lives_in_the_extensions_schema(conn):
    row = one(
        conn,
        "select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace"
        " where e.extname = 'pg_trgm'",
    )
    assert row["nspname"] == "extensions"


def test_new_public_objects_are_granted_to_the_api_roles_as_on_supabase(conn):
    # The defaults the migrations must be safe under: a table and a function created without
    # any grant are open to anon and authenticated.
    with conn.transaction(force_rollback=True):
        conn.execute("create table public.probe (id int)")
        conn.execute("create function public.probe_fn() returns int language sql as 'select 1'")
        row = one(
            conn,
            "select has_table_privilege('anon', 'public.probe', 'insert') as anon_table,"
            " has_table_privilege('authenticated', 'public.probe', 'delete') as auth_table,"
            " has_function_privilege('anon', 'public.probe_fn()', 'execute') as anon_fn",
        )
    assert row == {"anon_table": True, "auth_table": True, "anon_fn": True}
