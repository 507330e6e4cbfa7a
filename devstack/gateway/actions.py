"""Table actions: read (GET/HEAD), insert (POST), update (PATCH), delete (DELETE)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from psycopg import sql

from devstack.gateway import embed, mutations, render, statements
from devstack.gateway.catalog import Table
from devstack.gateway.errors import ApiError, pgrst
from devstack.gateway.executor import Result, Transaction
from devstack.gateway.grammar import parse_columns, parse_select
from devstack.gateway.request import (
    Prefer,
    Query,
    content_range,
    offset_error,
    page_bounds,
    range_status,
)
from devstack.gateway.response import (
    Response,
    apply_response_gucs,
    media_type,
    preference_applied,
    singular_error,
)

if TYPE_CHECKING:
    from devstack.gateway.handler import Gateway


@dataclass
class Context:
    gateway: Gateway
    tx: Transaction
    method: str
    schema: str
    query: Query
    prefer: Prefer
    singular: bool
    authenticated: bool
    range_header: str | None
    body: bytes
    base_headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    variant: str = "json"  # json | csv | stripped (the body's media type variant)

    def response(self, status: int) -> Response:
        return Response(status, dict(self.base_headers))

    def count_requested(self) -> bool:
        return self.prefer.get("count") is not None


def invalid_body() -> ApiError:
    return pgrst(400, "PGRST102", "Empty or invalid json")


def parse_body(raw: bytes, *, empty: Any = None) -> Any:
    if not raw.strip():
        if empty is not None:
            return empty
        raise invalid_body()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise invalid_body() from exc


def _column_type(table: Table) -> render.ColumnType:
    def lookup(name: str) -> str | None:
        column = table.columns.get(name)
        return column.type if column else None
    return lookup


def missing_column(table: Table, column: str) -> ApiError:
    return pgrst(400, "PGRST204", f"Could not find the '{column}' column of '{table.name}' in "
                 "the schema cache")


def read_response(ctx: Context, result: Result, lower: int, *, head: bool,
                  max_affected: bool = False) -> Response:
    """`max_affected`: the request can apply max-affected (an RPC), so it is reported."""
    n, total = result.page_total, result.total
    if total is not None and lower > total:
        raise offset_error(lower, total)
    if ctx.singular and n != 1:
        raise singular_error(n)
    status = 200 if ctx.singular else range_status(lower, n, total)
    response = ctx.response(status)
    response.headers["Content-Range"] = content_range(lower, n, total)
    response.headers["Content-Type"] = media_type(ctx.singular, ctx.variant)
    if ctx.prefer.values:
        keys = ("count", "handling", "timezone", "max-affected") if max_affected and \
            ctx.prefer.get("handling") == "strict" else ("count", "handling", "timezone")
        applied = preference_applied({k: ctx.prefer.values[k] for k in keys
                                      if k in ctx.prefer.values})
        if applied:
            response.headers["Preference-Applied"] = applied
    apply_response_gucs(result, response)
    if not head:
        response.body = (result.body or "").encode()
    return response


def use_planned(ctx: Context, result: Result) -> None:
    """count=planned: the planner's estimate; count=estimated: the exact count up to
    db-max-rows, the estimate above it (PostgREST's rule)."""
    if result.planned is None:
        return
    cap = ctx.gateway.settings.max_rows
    if ctx.prefer.get("count") == "planned" or (cap is not None and result.planned > cap):
        result.total = result.planned


async def read(ctx: Context, table: Table) -> Response:
    rel = statements.table_ident(table)
    items = parse_select(ctx.query.select)
    joins: sql.Composable = sql.SQL("")
    count_joins = False
    related: dict[str, sql.Composable | None] = {}
    if embed.has_embeds(items) or ctx.query.embedded:
        planned = embed.Planner(ctx.gateway.catalog, ctx.query.embedded).plan(
            table, rel, items)
        select, joins = planned.select_sql(), planned.joins_sql()
        where = render.where_sql(rel, ctx.query.filters, _column_type(table), planned.labels,
                                 planned.conditions)
        count_joins = bool(planned.conditions) or embed.uses_labels(ctx.query.filters,
                                                                     planned.labels)
        related = planned.related
    else:
        select = render.select_sql(rel, items)
        where = render.where_sql(rel, ctx.query.filters, _column_type(table))
    lower, limit = page_bounds(ctx.query, ctx.range_header if ctx.method == "GET" else None,
                               ctx.gateway.settings.max_rows)
    method = ctx.prefer.get("count")
    stmt = statements.read_table(
        table, select, where, render.order_sql(rel, ctx.query.order, related, table.name),
        statements.Page(lower, limit), count=method in ("exact", "estimated"),
        shape="object" if ctx.singular else "array", joins=joins, count_joins=count_joins,
        variant=ctx.variant)
    explain = sql.SQL("SELECT 1 FROM {}{}{}").format(rel, joins if count_joins else sql.SQL(""),
                                                     where) \
        if method in ("planned", "estimated") else None
    result = await ctx.gateway.executor.run(ctx.tx, stmt, authenticated=ctx.authenticated,
                                            explain=explain)
    use_planned(ctx, result)
    return read_response(ctx, result, lower, head=ctx.method == "HEAD")


def returning_for(ctx: Context, table: Table) -> mutations.Returning:
    mode = ctx.prefer.get("return") or "minimal"
    shape = "object" if ctx.singular else "array"
    if mode != "representation":
        ctx.query.reject_embedded()
        return mutations.Returning(mode, None, shape, ctx.variant)
    items = parse_select(ctx.query.select)
    if embed.has_embeds(items) or ctx.query.embedded:
        # The written rows are read back with their embeds from the statement's RETURNING.
        planned = embed.Planner(ctx.gateway.catalog, ctx.query.embedded).plan(
            table, mutations.WRITTEN, items)
        where = render.where_sql(mutations.WRITTEN, [], _column_type(table), planned.labels,
                                 planned.conditions)
        return mutations.Returning(mode, None, shape, ctx.variant, embedded=(
            planned.select_sql(), planned.joins_sql() + where))
    ctx.query.reject_embedded()
    select = render.select_sql(statements.table_ident(table), items)
    return mutations.Returning(mode, select, shape, ctx.variant)


def _mutation_check(ctx: Context) -> Any:
    limit = ctx.prefer.get("max-affected") if ctx.prefer.get("handling") == "strict" else None

    def check(result: Result) -> ApiError | None:
        if ctx.singular and result.page_total != 1:
            return singular_error(result.page_total)
        if limit is not None and result.page_total > int(limit):
            return pgrst(400, "PGRST124", "Query result exceeds max-affected preference "
                         "constraint", f"The query affects {result.page_total} rows")
        return None
    return check if ctx.singular or limit is not None else None


def _mutation_response(ctx: Context, result: Result, status: int, returning: mutations.Returning,
                       *, applied: dict[str, str], content_range_value: str) -> Response:
    response = ctx.response(status)
    response.headers["Content-Range"] = content_range_value
    if returning.mode == "representation":
        response.headers["Content-Type"] = media_type(ctx.singular, ctx.variant)
        response.body = (result.body or "").encode()
    for key in ("return", "count", "handling", "timezone"):
        if key in ctx.prefer.values:
            applied[key] = ctx.prefer.values[key]
    if "max-affected" in ctx.prefer.values and applied.get("handling") == "strict":
        applied["max-affected"] = ctx.prefer.values["max-affected"]
    header = preference_applied(applied)
    if header:
        response.headers["Preference-Applied"] = header
    apply_response_gucs(result, response)
    return response


def _location(table: Table, extra: str | None) -> str | None:
    if not extra:
        return None
    row = json.loads(extra)
    pairs = [f"{quote(k, safe='')}=eq.{quote(str(v), safe='')}" for k, v in row.items()]
    return f"/{table.name}?" + "&".join(pairs)


async def insert(ctx: Context, table: Table) -> Response:
    payload = parse_body(ctx.body)
    rows = [payload] if isinstance(payload, dict) else payload
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise invalid_body()
    if ctx.query.columns is not None:
        columns = parse_columns(ctx.query.columns)
    else:
        columns = list(rows[0]) if rows else []
        keys = set(columns)
        if any(set(r) != keys for r in rows[1:]):
            raise pgrst(400, "PGRST102", "All object keys must match")
    for column in columns:
        if column not in table.columns:
            raise missing_column(table, column)
    if ctx.prefer.get("missing") == "default":
        # A column no row gives is left out, so PostgreSQL applies its default itself: the only
        # way for identity and generated columns, and no sequence privilege is needed.
        given = [c for c in columns if any(c in r for r in rows)]
        columns = given or columns
    resolution = ctx.prefer.get("resolution")
    on_conflict = parse_columns(ctx.query.on_conflict) if ctx.query.on_conflict else None
    if not (on_conflict or table.primary_key):
        resolution = None
    returning = returning_for(ctx, table)
    stmt = mutations.insert(
        table, columns, json.dumps(rows, ensure_ascii=False), returning, resolution=resolution,
        on_conflict=on_conflict, missing_default=ctx.prefer.get("missing") == "default")
    result = await ctx.gateway.executor.run(ctx.tx, stmt, authenticated=ctx.authenticated,
                                            check=_mutation_check(ctx))
    status = 200 if resolution == "merge-duplicates" and rows and not result.inserted else 201
    applied = {"resolution": resolution} if resolution else {}
    if ctx.prefer.get("missing") == "default":
        applied["missing"] = "default"
    total = result.page_total if ctx.count_requested() else None
    response = _mutation_response(ctx, result, status, returning, applied=applied,
                                  content_range_value=f"*/{'*' if total is None else total}")
    location = _location(table, result.extra) if returning.mode == "headers-only" else None
    if location:
        response.headers["Location"] = location
    return response


def _require_filters(ctx: Context, verb: str) -> None:
    if ctx.gateway.settings.safeupdate and not ctx.query.filters:
        # pg-safeupdate, which hosted Supabase preloads for the authenticator role.
        raise ApiError(400, "21000", f"{verb} requires a WHERE clause")
    if ctx.query.limit is not None or ctx.query.offset:
        raise pgrst(400, "PGRST127", "Feature not implemented", "limited update/delete")


async def update(ctx: Context, table: Table) -> Response:
    payload = parse_body(ctx.body)
    if not isinstance(payload, dict):
        raise invalid_body()
    columns = parse_columns(ctx.query.columns) if ctx.query.columns is not None else list(payload)
    for column in columns:
        if column not in table.columns:
            raise missing_column(table, column)
    _require_filters(ctx, "UPDATE")
    rel = statements.table_ident(table)
    where = render.where_sql(rel, ctx.query.filters, _column_type(table))
    returning = returning_for(ctx, table)
    stmt = mutations.update(table, json.dumps(payload, ensure_ascii=False), columns, where,
                            returning)
    result = await ctx.gateway.executor.run(ctx.tx, stmt, authenticated=ctx.authenticated,
                                            check=_mutation_check(ctx))
    status = 200 if returning.mode == "representation" else 204
    total = result.page_total if ctx.count_requested() else None
    return _mutation_response(ctx, result, status, returning, applied={},
                              content_range_value=content_range(0, result.page_total, total))


async def delete(ctx: Context, table: Table) -> Response:
    _require_filters(ctx, "DELETE")
    rel = statements.table_ident(table)
    where = render.where_sql(rel, ctx.query.filters, _column_type(table))
    returning = returning_for(ctx, table)
    stmt = mutations.delete(table, where, returning)
    result = await ctx.gateway.executor.run(ctx.tx, stmt, authenticated=ctx.authenticated,
                                            check=_mutation_check(ctx))
    status = 200 if returning.mode == "representation" else 204
    total = result.page_total if ctx.count_requested() else None
    return _mutation_response(ctx, result, status, returning, applied={},
                              content_range_value=f"*/{'*' if total is None else total}")

