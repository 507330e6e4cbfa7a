"""The Supabase REST surface the app uses, read from a migrated database's catalog.

What the role `authenticated` may do is what the grants say, so this reads them rather than a
list kept by hand: the tables of `public` it may select (their columns and types, enum values,
nullability; PATCH where it may update columns), and the functions of `public` it may execute
(`POST /rest/v1/rpc/<name>`: their parameters, defaults and result). Row-level security decides
which rows; every table here has it enabled, and the document says so.

`throwaway_database()` starts an embedded PostgreSQL in a temporary folder, applies the local
bootstrap and the migrations, and removes it afterwards (for `python -m ops.openapi`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

ROLE = "authenticated"
PREFIX = "/rest/v1"
LOCAL_SUPABASE_URL = "http://127.0.0.1:54321"

_TYPE_INFO = """
select t.oid, pg_catalog.format_type(t.oid, null), t.typtype, t.typcategory, t.typelem,
       (select pg_catalog.array_agg(e.enumlabel order by e.enumsortorder)
          from pg_catalog.pg_enum e where e.enumtypid = t.oid)
  from pg_catalog.pg_type t
"""
_TABLES = """
select c.oid, c.relname, c.relrowsecurity, pg_catalog.obj_description(c.oid, 'pg_class')
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm')
   and pg_catalog.has_any_column_privilege(%(role)s, c.oid, 'SELECT')
 order by c.relname
"""
_COLUMNS = """
select a.attname, a.atttypid, a.attnotnull,
       pg_catalog.has_column_privilege(%(role)s, a.attrelid, a.attnum, 'SELECT'),
       pg_catalog.has_column_privilege(%(role)s, a.attrelid, a.attnum, 'UPDATE'),
       pg_catalog.col_description(a.attrelid, a.attnum)
  from pg_catalog.pg_attribute a
 where a.attrelid = %(table)s and a.attnum > 0 and not a.attisdropped
 order by a.attnum
"""
_FUNCTIONS = """
select p.proname, p.proargnames, p.proargmodes,
       coalesce(p.proallargtypes, p.proargtypes::oid[]), p.pronargdefaults, p.proretset,
       p.prorettype, pg_catalog.obj_description(p.oid, 'pg_proc')
  from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
 where n.nspname = 'public' and p.prokind = 'f'
   and pg_catalog.has_function_privilege(%(role)s, p.oid, 'EXECUTE')
   and not exists (select 1 from pg_catalog.pg_depend d
                    where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid
                      and d.deptype = 'e')
 order by p.proname
"""
_SCALARS: dict[str, dict[str, Any]] = {
    "uuid": {"type": "string", "format": "uuid"},
    "text": {"type": "string"}, "character varying": {"type": "string"},
    "citext": {"type": "string"},
    "integer": {"type": "integer", "format": "int32"},
    "smallint": {"type": "integer", "format": "int32"},
    "bigint": {"type": "integer", "format": "int64"},
    "numeric": {"type": "number"}, "double precision": {"type": "number"},
    "real": {"type": "number"}, "boolean": {"type": "boolean"},
    "timestamp with time zone": {"type": "string", "format": "date-time"},
    "timestamp without time zone": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "jsonb": {}, "json": {}, "inet": {"type": "string"}, "bytea": {"type": "string"},
}


@dataclass
class Column:
    name: str
    schema: dict[str, Any]
    required: bool
    updatable: bool
    description: str | None


@dataclass
class Table:
    name: str
    row_level_security: bool
    description: str | None
    columns: list[Column] = field(default_factory=list)


@dataclass
class Function:
    name: str
    parameters: list[tuple[str, dict[str, Any], bool]]  # name, schema, required
    result: dict[str, Any]
    description: str | None


@dataclass
class Catalog:
    tables: list[Table]
    functions: list[Function]


class _Types:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.rows = {row[0]: row[1:] for row in conn.execute(_TYPE_INFO).fetchall()}

    def schema(self, oid: int) -> dict[str, Any]:
        name, kind, category, element, labels = self.rows[oid]
        if kind == "e":
            return {"type": "string", "enum": list(labels)}
        if category == "A" and element:
            return {"type": "array", "items": self.schema(element)}
        if name == "void":
            return {"type": "null"}
        return dict(_SCALARS.get(name, {"type": "string", "description": name}))


def read_catalog(database_url: str, role: str = ROLE) -> Catalog:
    with psycopg.connect(database_url) as conn:
        types = _Types(conn)
        tables = []
        for oid, name, rls, description in conn.execute(_TABLES, {"role": role}).fetchall():
            table = Table(name, rls, description)
            for col, typ, notnull, select, update, text in conn.execute(
                    _COLUMNS, {"role": role, "table": oid}).fetchall():
                if select:
                    schema = types.schema(typ)
                    if not notnull:
                        schema = {"anyOf": [schema, {"type": "null"}]} if schema else {}
                    table.columns.append(Column(col, schema, notnull, update, text))
            tables.append(table)
        functions = [_function(row, types) for row in
                     conn.execute(_FUNCTIONS, {"role": role}).fetchall()]
    return Catalog(tables, functions)


def _function(row: tuple[Any, ...], types: _Types) -> Function:
    name, names, modes, arg_types, n_defaults, returns_set, result_type, description = row
    names = names or [f"arg{i + 1}" for i in range(len(arg_types))]
    modes = modes or ["i"] * len(arg_types)
    inputs = [(n, types.schema(t)) for n, t, m in zip(names, arg_types, modes, strict=True)
              if m in ("i", "b", "v")]
    outputs = [(n, types.schema(t)) for n, t, m in zip(names, arg_types, modes, strict=True)
               if m in ("o", "b", "t")]
    parameters = [(n, s, i < len(inputs) - n_defaults) for i, (n, s) in enumerate(inputs)]
    if outputs:
        result: dict[str, Any] = {"type": "object",
                                  "properties": {n: s for n, s in outputs}}
    else:
        result = types.schema(result_type)
    if returns_set:
        result = {"type": "array", "items": result}
    return Function(name, parameters, result, description)


def _bearer() -> list[dict[str, list[str]]]:
    return [{"supabaseApiKey": [], "accessToken": []}]


def _rest_error(text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/PostgrestError"}}}}


def _table_paths(table: Table, server: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/rest.{table.name}"}
    rls = "Row-level security: own rows only." if table.row_level_security else ""
    filters = [{"name": c.name, "in": "query", "required": False, "schema": {"type": "string"},
                "description": "A PostgREST filter, e.g. `eq.<value>`."} for c in table.columns]
    common = [
        {"name": "select", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "Columns to return (PostgREST syntax), e.g. `id,created_at`."},
        {"name": "order", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "e.g. `created_at.desc,id.desc`."},
        {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer"}},
        {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer"}},
    ]
    item: dict[str, Any] = {"servers": [{"url": server}], "get": {
        "operationId": f"rest_select_{table.name}", "tags": ["rest: tables"],
        "summary": f"Read {table.name}. {rls}".strip(),
        "description": table.description or "",
        "parameters": common + filters, "security": _bearer(),
        "responses": {"200": {"description": "The visible rows.", "content": {
                          "application/json": {"schema": {"type": "array", "items": ref}}}},
                      "400": _rest_error("Malformed filter or unknown column."),
                      "401": _rest_error("Missing, expired or forged token.")}}}
    updatable = [c for c in table.columns if c.updatable]
    if updatable:
        item["patch"] = {
            "operationId": f"rest_update_{table.name}", "tags": ["rest: tables"],
            "summary": f"Update {', '.join(c.name for c in updatable)} of own rows of "
                       f"{table.name}; no other column may be written.",
            "parameters": filters, "security": _bearer(),
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False, "minProperties": 1,
                "properties": {c.name: c.schema for c in updatable}}}}},
            "responses": {"200": {"description": "The updated rows (`Prefer: return=representation`).",
                                  "content": {"application/json": {
                                      "schema": {"type": "array", "items": ref}}}},
                          "204": {"description": "Updated."},
                          "400": _rest_error("Malformed request."),
                          "401": _rest_error("Missing, expired or forged token."),
                          "403": _rest_error("A column that may not be written.")}}
    return item


def _function_path(function: Function, server: str) -> dict[str, Any]:
    body = {"type": "object", "additionalProperties": False,
            "properties": {n: s for n, s, _ in function.parameters},
            "required": [n for n, _, required in function.parameters if required]}
    return {"servers": [{"url": server}], "post": {
        "operationId": f"rest_rpc_{function.name}", "tags": ["rest: rpc"],
        "summary": f"Call {function.name}({', '.join(n for n, _, _ in function.parameters)})",
        "description": " ".join(filter(None, [
            function.description,
            "Domain errors come back as 400 with the project SQLSTATE in `code` (MV001 "
            "insufficient_stars, ...) and the error code as `message`."])),
        "security": _bearer(),
        "requestBody": {"required": bool(body["required"]),
                        "content": {"application/json": {"schema": body}}},
        "responses": {"200": {"description": "The result.",
                              "content": {"application/json": {"schema": function.result}}},
                      "400": _rest_error("A domain error (project SQLSTATE in `code`)."),
                      "401": _rest_error("Missing, expired or forged token."),
                      "404": _rest_error("No such function for these parameters.")}}}


def rest_document_parts(catalog: Catalog, server: str = LOCAL_SUPABASE_URL
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(paths, component schemas) of the REST surface."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"PostgrestError": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "details": {"type": ["string", "null"]},
                       "hint": {"type": ["string", "null"]}}}}
    for table in catalog.tables:
        paths[f"{PREFIX}/{table.name}"] = _table_paths(table, server)
        schemas[f"rest.{table.name}"] = {
            "type": "object", "description": table.description or f"A row of {table.name}.",
            "properties": {c.name: {**c.schema, **({"description": c.description}
                                                   if c.description else {})}
                           for c in table.columns},
            "required": [c.name for c in table.columns if c.required]}
    for function in catalog.functions:
        paths[f"{PREFIX}/rpc/{function.name}"] = _function_path(function, server)
    return paths, schemas


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A migrated database on an embedded PostgreSQL in a temporary folder, removed after."""
    from devstack.database import apply_bootstrap, create_database
    from devstack.postgres import PostgresCluster
    from ops.migrate import migrate_up

    with tempfile.TemporaryDirectory(prefix="mimivibe-openapi-") as work:
        cluster = PostgresCluster(Path(work) / "pg")
        cluster.start()
        try:
            url = create_database(cluster.url, "catalog")
            apply_bootstrap(url)
            migrate_up(url)
            yield url
        finally:
            cluster.stop()
