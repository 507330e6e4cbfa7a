"""`GET /rest/v1/`: the OpenAPI (Swagger 2.0) description of the exposed schema, as PostgREST
serves it at its root: a definition per table (column types and formats, required columns,
keys), paths for tables and functions. Like PostgREST's default `follow-privileges` mode it lists
only the tables and functions the caller may use, asked of PostgreSQL as the caller."""

from __future__ import annotations

import json
from typing import Any

from psycopg import sql

from devstack.gateway.catalog import Catalog, Column, Function, Table
from devstack.gateway.statements import wrap

MEDIA_TYPE = "application/openapi+json; charset=utf-8"
_TYPES = {
    "character varying": "string", "character": "string", "text": "string",
    "boolean": "boolean", "smallint": "integer", "integer": "integer", "bigint": "integer",
    "numeric": "number", "real": "number", "double precision": "number",
}
_MEDIA = ["application/json", "application/vnd.pgrst.object+json;nulls=stripped",
          "application/vnd.pgrst.object+json", "text/csv"]


def visible_sql(tables: list[Table], functions: list[Function]) -> sql.Composed:
    """One row per table or function the caller has a privilege on (run as the caller)."""
    table_rows: list[sql.Composable] = [sql.SQL("({}, {}, NULL::oid)").format(sql.Literal("t"), sql.Literal(
        sql.Identifier(t.schema, t.name).as_string(None))) for t in tables]
    function_rows = [sql.SQL("({}, {}, {}::oid)").format(
        sql.Literal("f"), sql.Literal(f"{f.schema}.{f.name}"), sql.Literal(f.oid))
        for f in functions]
    rows = table_rows + function_rows or [sql.SQL("('t', '', NULL::oid)")]
    source = sql.SQL(
        "SELECT kind, name, fn FROM (VALUES {}) AS v(kind, name, fn) WHERE CASE kind "
        "WHEN 't' THEN name <> '' AND pg_catalog.has_any_column_privilege(name, "
        "'SELECT, INSERT, UPDATE') ELSE pg_catalog.has_function_privilege(fn, 'EXECUTE') END"
    ).format(sql.SQL(", ").join(rows))
    return wrap(source, shape="array")


def _property(table: Table, column: Column) -> dict[str, Any]:
    prop: dict[str, Any] = {"format": column.type}
    base = column.type.split("(")[0]
    if column.type.endswith("[]"):
        prop["type"] = "array"
        item = _TYPES.get(column.type[:-2].split("(")[0])
        prop["items"] = {"type": item or "string"}
    elif base in _TYPES:
        prop["type"] = _TYPES[base]
    elif base not in ("json", "jsonb"):
        prop["type"] = "string"
    if column.default is not None:
        prop["default"] = column.default
    notes = []
    if column.primary:
        notes.append("This is a Primary Key.<pk/>")
    for fk in table.foreign_keys:
        if fk.columns == (column.name,):
            notes.append(f"This is a Foreign Key to `{fk.ref_table[1]}.{fk.ref_columns[0]}`."
                         f"<fk table='{fk.ref_table[1]}' column='{fk.ref_columns[0]}'/>")
    if notes:
        prop["description"] = "Note:\n" + "\n".join(notes)
    return prop


def _table_paths(table: Table) -> dict[str, Any]:
    ref = {"$ref": f"#/definitions/{table.name}"}
    ok = {"200": {"description": "OK", "schema": {"type": "array", "items": ref}},
          "206": {"description": "Partial Content"}}
    tag = [table.name]
    return {
        "get": {"tags": tag, "responses": ok},
        "post": {"tags": tag, "responses": {"201": {"description": "Created"}},
                 "parameters": [{"in": "body", "name": table.name, "required": False,
                                 "schema": ref}]},
        "patch": {"tags": tag, "responses": {"204": {"description": "No Content"}}},
        "delete": {"tags": tag, "responses": {"204": {"description": "No Content"}}},
    }


def _function_paths(fn: Function) -> dict[str, Any]:
    properties = {a.name: {"format": a.type, **({"type": _TYPES[a.type]}
                                                 if a.type in _TYPES else {})}
                  for a in fn.args if a.name}
    required = [a.name for a in fn.args if a.name and a.required]
    body: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        body["required"] = required
    tag = ["(rpc) " + fn.name]
    operation = {"tags": tag, "responses": {"200": {"description": "OK"}}}
    return {"post": {**operation, "parameters": [{"in": "body", "name": "args",
                                                   "required": True, "schema": body}]},
            "get": operation}


def document(catalog: Catalog, schema: str, visible: str | None, host: str | None) -> bytes:
    allowed = {(row["kind"], row["name"]) for row in json.loads(visible or "[]")}
    tables = [t for (s, _), t in sorted(catalog.tables.items())
              if s == schema and ("t", sql.Identifier(s, t.name).as_string(None)) in allowed]
    paths: dict[str, Any] = {"/": {"get": {"tags": ["Introspection"], "summary":
                                           "OpenAPI description (this document)",
                                           "produces": ["application/openapi+json",
                                                        "application/json"],
                                           "responses": {"200": {"description": "OK"}}}}}
    definitions: dict[str, Any] = {}
    for table in tables:
        paths[f"/{table.name}"] = _table_paths(table)
        definition: dict[str, Any] = {"type": "object", "properties": {
            c.name: _property(table, c) for c in table.columns.values()}}
        required = [c.name for c in table.columns.values()
                    if c.not_null and c.default is None and not c.always]
        if required:
            definition["required"] = required
        definitions[table.name] = definition
    for (s, name), overloads in sorted(catalog.functions.items()):
        usable = [f for f in overloads if ("f", f"{s}.{name}") in allowed]
        if s == schema and usable:
            paths[f"/rpc/{name}"] = _function_paths(usable[0])
    doc = {"swagger": "2.0",
           "info": {"title": "PostgREST API", "version": "13",
                    "description": "The local gateway's description of the exposed schema"},
           "host": host or "localhost", "basePath": "/rest/v1", "schemes": ["http"],
           "consumes": _MEDIA, "produces": _MEDIA, "paths": paths,
           "definitions": definitions}
    return json.dumps(doc, ensure_ascii=False).encode()
