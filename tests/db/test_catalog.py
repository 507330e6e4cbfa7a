"""Security properties of the whole schema, read from the catalog, so that every migration
(later ones included) is held to them: under Supabase's default privileges (the bootstrap grants
ALL on new public objects to anon and authenticated), nothing leaks."""

from __future__ import annotations

import pytest
from psycopg.rows import dict_row

from tests.db.conftest import connect

# Functions owned by extensions are not ours to configure.
OUR_FUNCTIONS = """
  select p.oid, n.nspname || '.' || p.proname as name, p.proconfig, p.proacl
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname in ('public', 'private')
     and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
"""
PUBLIC_TABLES = """
  select c.oid, c.relname, c.relrowsecurity
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public' and c.relkind in ('r', 'p')
"""
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@pytest.fixture(scope="module")
def catalog(migrated_db):
    with connect(migrated_db, row_factory=dict_row) as conn:
        yield conn


def test_the_test_database_has_supabase_default_privileges(catalog):
    rows = catalog.execute(
        "select d.defaclobjtype as kind, a.grantee::regrole::text as grantee"
        " from pg_default_acl d cross join aclexplode(d.defaclacl) a"
        " where d.defaclnamespace = 'public'::regnamespace"
    ).fetchall()
    granted = {(r["kind"], r["grantee"]) for r in rows}
    assert {("r", "anon"), ("r", "authenticated"), ("f", "anon"), ("f", "authenticated")} <= granted


def test_every_function_pins_an_empty_search_path(catalog):
    functions = catalog.execute(OUR_FUNCTIONS).fetchall()
    assert len(functions) >= 8
    loose = [f["name"] for f in functions if 'search_path=""' not in (f["proconfig"] or [])]
    assert loose == []


def test_no_function_is_executable_by_public_or_anon(catalog):
    functions = catalog.execute(OUR_FUNCTIONS).fetchall()
    open_to_all = [
        f["name"]
        for f in functions
        if f["proacl"] is None
        or catalog.execute(
            "select exists (select 1 from aclexplode(%s::aclitem[]) a where a.grantee = 0) as e",
            (f["proacl"],),
        ).fetchone()["e"]
    ]
    anon = [
        f["name"]
        for f in functions
        if catalog.execute(
            "select has_function_privilege('anon', %s, 'execute') as ok", (f["oid"],)
        ).fetchone()["ok"]
    ]
    assert open_to_all == []
    assert anon == []


# docs/API.md's RPCs granted to `authenticated`, and the one helper search_readings (security
# invoker) calls: reading_search_terms normalizes a query with the private normalizer and reads
# no table.
AUTHENTICATED_RPCS = {
    "public.exchange_coins(coins integer, idempotency_key text)",
    "public.search_readings(query text, before_created_at timestamp with time zone,"
    " before_id uuid, page_size integer)",
    "public.reading_status(job_id uuid)",
    "public.set_default_payment_method(payment_method_id uuid)",
    "public.wallet_summary()",
    "public.export_account()",
    "public.reading_search_terms(p_query text)",
}
PURE_HELPERS = {"public.reading_search_terms"}


def test_authenticated_executes_exactly_the_api_rpcs(catalog):
    rows = catalog.execute(
        "select n.nspname || '.' || p.proname || '('"
        " || pg_get_function_identity_arguments(p.oid) || ')' as signature"
        " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname in ('public', 'private')"
        " and has_function_privilege('authenticated', p.oid, 'execute')"
    ).fetchall()
    assert {r["signature"] for r in rows} == AUTHENTICATED_RPCS


def test_owner_rights_functions_open_to_users_take_the_user_from_the_token(catalog):
    # docs/DESIGN.md (security): a security definer function callable by a user must not
    # accept a user id (anyone could pass someone else's); it reads auth.uid() instead.
    rows = catalog.execute(
        "select n.nspname || '.' || p.proname as name, p.prosrc,"
        " coalesce(p.proargnames, '{}') as args"
        " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname in ('public', 'private') and p.prosecdef"
        " and has_function_privilege('authenticated', p.oid, 'execute')"
    ).fetchall()
    assert rows, "expected the user-facing RPCs that move money to run with owner's rights"
    for r in rows:
        assert not [a for a in r["args"] if "user" in a], r["name"]
        if r["name"] not in PURE_HELPERS:
            assert "auth.uid()" in r["prosrc"], r["name"]


def test_no_sequence_is_usable_by_api_roles(catalog):
    # Supabase's default privileges grant ALL on new sequences too.
    sequences = catalog.execute(
        "select c.oid, n.nspname || '.' || c.relname as name from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname in ('public', 'private') and c.relkind = 'S'"
    ).fetchall()
    open_ = [
        (s["name"], role)
        for s in sequences
        for role in ("anon", "authenticated")
        if catalog.execute(
            "select has_sequence_privilege(%s, %s, 'usage, select, update') as ok",
            (role, s["oid"]),
        ).fetchone()["ok"]
    ]
    assert open_ == []


def test_private_schema_is_closed_to_api_roles(catalog):
    for role, expected in (("anon", False), ("authenticated", False), ("service_role", True)):
        row = catalog.execute(
            "select has_schema_privilege(%s, 'private', 'usage') as ok", (role,)
        ).fetchone()
        assert row["ok"] is expected, role


def test_every_public_table_has_rls_and_nothing_for_anon(catalog):
    tables = catalog.execute(PUBLIC_TABLES).fetchall()
    assert [t["relname"] for t in tables if not t["relrowsecurity"]] == []
    leaks = [
        (t["relname"], privilege)
        for t in tables
        for privilege in TABLE_PRIVILEGES
        if catalog.execute(
            "select has_table_privilege('anon', %s, %s) as ok", (t["oid"], privilege)
        ).fetchone()["ok"]
    ]
    assert leaks == []


def test_authenticated_may_only_read_and_update_its_name_and_picture(catalog):
    tables = catalog.execute(PUBLIC_TABLES).fetchall()
    writes = [
        (t["relname"], privilege)
        for t in tables
        for privilege in TABLE_PRIVILEGES[1:]
        if catalog.execute(
            "select has_table_privilege('authenticated', %s, %s) as ok", (t["oid"], privilege)
        ).fetchone()["ok"]
    ]
    assert writes == []
    columns = catalog.execute(
        "select table_name || '.' || column_name as col from information_schema.column_privileges"
        " where grantee = 'authenticated' and privilege_type in ('UPDATE', 'INSERT')"
        " and table_schema = 'public' order by 1"
    ).fetchall()
    assert [c["col"] for c in columns] == ["users.name", "users.picture_url"]


def test_policies_name_one_command_and_role_and_call_auth_uid_once(catalog):
    policies = catalog.execute(
        "select tablename, policyname, roles::text[] as roles, cmd, coalesce(qual, '') as qual,"
        " coalesce(with_check, '') as with_check from pg_policies where schemaname = 'public'"
    ).fetchall()
    assert len(policies) >= 10
    for p in policies:
        assert p["cmd"] != "ALL", p["policyname"]
        assert len(p["roles"]) == 1 and p["roles"] != ["public"], p["policyname"]
        for expression in (p["qual"], p["with_check"]):
            bare = expression.replace("SELECT auth.uid()", "")
            assert "auth.uid()" not in bare, p["policyname"]


def test_every_updated_at_column_is_maintained_by_a_trigger(catalog):
    missing = catalog.execute(
        "select c.table_name from information_schema.columns c"
        " where c.table_schema = 'public' and c.column_name = 'updated_at'"
        " and not exists (select 1 from pg_trigger t"
        "   where t.tgrelid = ('public.' || quote_ident(c.table_name))::regclass"
        "     and t.tgfoid = 'private.set_updated_at'::regproc)"
    ).fetchall()
    assert missing == []
