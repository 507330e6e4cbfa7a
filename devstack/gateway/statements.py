"""The main statement of each action, in PostgREST's shape (one statement, JSON built in SQL).

Every statement returns one row: total, page_total, body, extra, response_headers,
response_status, inserted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from psycopg import sql

from devstack.gateway.catalog import Function, Table
from devstack.gateway.executor import Prepared

SOURCE = sql.Identifier("pgrst_source")
CALL = sql.Identifier("pgrst_call")
_TAIL = sql.SQL(
    ", nullif(pg_catalog.current_setting('response.headers', true), '') AS response_headers"
    ", nullif(pg_catalog.current_setting('response.status', true), '') AS response_status"
)
_TAIL_TEXT = _TAIL.as_string(None)
_INSERTED_GUC = "nullif(pg_catalog.current_setting('pgrst.inserted', true), '')::int"


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int | None

    def sql(self) -> sql.Composable:
        limit = sql.SQL(" LIMIT {}").format(sql.Literal(self.limit)) if self.limit is not None \
            else sql.SQL("")
        offset = sql.SQL(" OFFSET {}").format(sql.Literal(self.offset)) if self.offset else \
            sql.SQL("")
        return limit + offset


_CSV = (
    # PostgREST's CSV: the keys of the first row as the header line, then each row's record
    # text without its parentheses.
    "(SELECT coalesce(pg_catalog.string_agg(pgrst_k.k, ','), '') FROM (SELECT "
    "pg_catalog.json_object_keys(pgrst_h.r)::text AS k FROM (SELECT pg_catalog.row_to_json(hh)"
    " AS r FROM pgrst_source AS hh LIMIT 1) pgrst_h) pgrst_k) || pg_catalog.chr(10) || "
    "coalesce(pg_catalog.string_agg(substring(_postgrest_t::text, 2, "
    "pg_catalog.length(_postgrest_t::text) - 2), pg_catalog.chr(10)), '')"
)
_STRIPPED = {
    "array": "coalesce(pg_catalog.json_agg(pg_catalog.json_strip_nulls("
             "pg_catalog.row_to_json(_postgrest_t))), '[]')::text",
    "object": "(pg_catalog.json_agg(pg_catalog.json_strip_nulls("
              "pg_catalog.row_to_json(_postgrest_t))) -> 0)::text",
}


def body_sql(shape: str, variant: str = "json") -> sql.Composable:
    """shape: array | object | scalar | setscalar | none; variant: json | csv | stripped (for
    rows: arrays and objects)."""
    if variant == "csv" and shape == "array":
        return sql.SQL(_CSV)
    if variant == "stripped" and shape in _STRIPPED:
        return sql.SQL(_STRIPPED[shape])
    return sql.SQL({
        "array": "coalesce(pg_catalog.json_agg(_postgrest_t), '[]')::text",
        "object": "(pg_catalog.json_agg(_postgrest_t) -> 0)::text",
        "scalar": "coalesce((pg_catalog.json_agg(_postgrest_t.pgrst_scalar) -> 0)::text, 'null')",
        "setscalar": "coalesce(pg_catalog.json_agg(_postgrest_t.pgrst_scalar), '[]')::text",
        "setscalar_object": "(pg_catalog.json_agg(_postgrest_t.pgrst_scalar) -> 0)::text",
        "none": "''",
    }[shape])


def wrap(source: sql.Composable, *, shape: str, total: sql.Composable | None = None,
         page: sql.Composable | None = None, extra: sql.Composable | None = None,
         inserted: bool = False, variant: str = "json",
         written: sql.Composable | None = None) -> sql.Composed:
    """`written`: a data-modifying statement run first as `pgrst_written`, which `source` reads
    (a write cannot sit inside the CTE of a read)."""
    before = sql.SQL("pgrst_written AS ({}), ").format(written) if written is not None \
        else sql.SQL("")
    return sql.SQL(
        "WITH {before}pgrst_source AS ({source}) SELECT {total} AS total, "
        "pg_catalog.count(_postgrest_t) AS page_total, {body} AS body, {extra} AS extra{tail}, "
        "{inserted} AS inserted FROM (SELECT * FROM pgrst_source{page}) _postgrest_t"
    ).format(
        before=before, source=source, total=total if total is not None else sql.NULL,
        body=body_sql(shape, variant),
        extra=extra if extra is not None else sql.NULL, tail=_TAIL,
        inserted=sql.SQL(_INSERTED_GUC) if inserted else sql.NULL,
        page=page if page is not None else sql.SQL(""),
    )


def table_ident(table: Table) -> sql.Identifier:
    return sql.Identifier(table.schema, table.name)


def read_table(table: Table, select: sql.Composable, where: sql.Composable,
               order: sql.Composable, page: Page, *, count: bool, shape: str,
               joins: sql.Composable | None = None, count_joins: bool = False,
               variant: str = "json") -> sql.Composed:
    """`count_joins`: the WHERE refers to the embeds' lateral joins, so the count needs them."""
    rel = table_ident(table)
    joined = joins if joins is not None else sql.SQL("")
    source = sql.SQL("SELECT {} FROM {}{}{}{}{}").format(select, rel, joined, where, order,
                                                          page.sql())
    total = sql.SQL("(SELECT pg_catalog.count(*) FROM {}{}{})").format(
        rel, joined if count_joins else sql.SQL(""), where) if count else None
    return wrap(source, shape=shape, total=total, variant=variant)


def _json_body_columns(columns: list[tuple[str, str]]) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(col_type))
        for name, col_type in columns)


def rpc_call(fn: Function, args: dict[str, object] | None, body_json: str | bytes | None
             ) -> tuple[sql.Composable | None, sql.Composable]:
    """(FROM item providing pgrst_args, if any; the call expression). Without `args`, the
    function's single unnamed parameter takes the whole body."""
    name = sql.Identifier(fn.schema, fn.name)
    unnamed = fn.single_unnamed_type
    if unnamed is not None and body_json is not None and args is None:
        return None, sql.SQL("{}({}::{})").format(name, sql.Literal(body_json), sql.SQL(unnamed))
    given = [a for a in fn.args if args is not None and a.name in args]
    if not given:
        return None, sql.SQL("{}()").format(name)
    prefix = sql.SQL("pg_catalog.json_to_record({}::json) AS pgrst_args({})").format(
        sql.Literal(body_json), _json_body_columns([(a.name, a.type) for a in given]))
    call = sql.SQL("{}({})").format(name, sql.SQL(", ").join(
        sql.SQL("{} := pgrst_args.{}").format(sql.Identifier(a.name), sql.Identifier(a.name))
        for a in given))
    return prefix, call


def read_rpc(fn: Function, prefix: sql.Composable | None, call: sql.Composable, *,
             select: sql.Composable, where: sql.Composable, order: sql.Composable, page: Page,
             count: bool, singular: bool, joins: sql.Composable | None = None,
             variant: str = "json") -> sql.Composed:
    if fn.returns_void:
        from_args = sql.SQL(" FROM {}").format(prefix) if prefix is not None else sql.SQL("")
        return wrap(sql.SQL("SELECT {}{}").format(call, from_args), shape="none")
    source, shape = rpc_source(fn, prefix, call, select=select, where=where, order=order,
                               singular=singular, joins=joins)
    total = sql.SQL("(SELECT pg_catalog.count(*) FROM pgrst_source)") if count else None
    return wrap(source, shape=shape, total=total, page=page.sql(), variant=variant)


def rpc_source(fn: Function, prefix: sql.Composable | None, call: sql.Composable, *,
               select: sql.Composable, where: sql.Composable, order: sql.Composable,
               singular: bool, joins: sql.Composable | None = None
               ) -> tuple[sql.Composable, str]:
    """(the rows of a non-void function's result as the request shapes them, body shape)."""
    joiner = sql.SQL(" FROM {}, LATERAL ").format(prefix) if prefix is not None \
        else sql.SQL(" FROM ")
    joined = joins if joins is not None else sql.SQL("")
    source: sql.Composable
    if fn.returns_composite:
        source = sql.SQL("SELECT {}{}{} pgrst_call{}{}{}").format(select, joiner, call, joined,
                                                                  where, order)
        shape = "object" if singular or not fn.returns_set else "array"
    else:
        # Scalars too go through the same FROM, so filters and order on the result are applied
        # (or fail on their unknown column), never dropped.
        source = sql.SQL("SELECT pgrst_call.pgrst_scalar{}(SELECT {} AS pgrst_scalar) pgrst_call"
                         "{}{}").format(joiner, call, where, order) if not fn.returns_set else \
            sql.SQL("SELECT pgrst_call.pgrst_scalar{}{} pgrst_call(pgrst_scalar){}{}").format(
                joiner, call, where, order)
        if not fn.returns_set:
            shape = "setscalar_object" if singular else "scalar"
        else:
            shape = "setscalar_object" if singular else "setscalar"
    return source, shape


@lru_cache(maxsize=1024)
def _name(*parts: str) -> str:
    return sql.Identifier(*parts).as_string(None)


def _argument_text(value: object, arg_type: str) -> tuple[bool, str | None]:
    """(whether the JSON value is a scalar, its text as json_to_record would produce it)."""
    if arg_type in ("json", "jsonb"):
        return True, json.dumps(value, ensure_ascii=False)
    if value is None:
        return True, None
    if isinstance(value, str):
        return True, value
    if isinstance(value, bool):
        return True, "true" if value else "false"
    if isinstance(value, int):
        return True, str(value)
    if isinstance(value, float):
        return True, json.dumps(value)
    return False, None


@lru_cache(maxsize=512)
def _plain_rpc_sql(schema: str, name: str, returns_void: bool,
                   args: tuple[tuple[str, str], ...]) -> str:
    parts = [f"{_name(arg)} := ${i}::{arg_type}" for i, (arg, arg_type) in enumerate(args, 1)]
    call = f"{_name(schema, name)}({', '.join(parts)})"
    body = f"{call}::text" if returns_void else \
        f"coalesce(pg_catalog.to_json({call})::text, 'null')"
    # The response GUCs are read after the call: target entries are evaluated in order.
    return (f"SELECT NULL AS total, 1 AS page_total, {body} AS body, NULL AS extra"
            f"{_TAIL_TEXT}, NULL AS inserted")


def plain_rpc(fn: Function, args: dict[str, object]) -> Prepared | None:
    """`SELECT to_json(fn(a := $1::type, ..))` for scalar and void functions called without any
    query features: same result and errors as the general shape, a fraction of its planning
    cost, and prepared once per connection. Values travel as text, cast like literals."""
    if fn.returns_set or fn.returns_composite:
        return None
    given: list[tuple[str, str]] = []
    params: list[str | None] = []
    for arg in fn.args:
        if arg.name in args:
            scalar, text = _argument_text(args[arg.name], arg.type)
            if not scalar:
                return None
            given.append((arg.name, arg.type))
            params.append(text)
    return Prepared(_plain_rpc_sql(fn.schema, fn.name, fn.returns_void, tuple(given)),
                    tuple(params))
