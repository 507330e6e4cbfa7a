"""PUT /<table>?<pk>=eq.<v>: PostgREST's single-row upsert.

The URL names the row by its whole primary key; the payload rows are filtered by the same
conditions, inserted with `ON CONFLICT (<pk>) DO UPDATE`, and the request fails (rolled back)
unless exactly one row went through, so a payload whose key differs from the URL is refused.
"""

from __future__ import annotations

import json

from psycopg import sql

from devstack.gateway import mutations, render
from devstack.gateway.actions import (
    Context,
    invalid_body,
    missing_column,
    parse_body,
    returning_for,
)
from devstack.gateway.catalog import Table
from devstack.gateway.errors import ApiError, pgrst
from devstack.gateway.executor import Result
from devstack.gateway.grammar import Filter, parse_columns
from devstack.gateway.response import (
    Response,
    apply_response_gucs,
    media_type,
    preference_applied,
)

_BODY = sql.Identifier("pgrst_body")


def _mismatch() -> ApiError:
    return pgrst(400, "PGRST115", "Payload values do not match URL in primary key column(s)")


def _pk_filters(ctx: Context, table: Table) -> list[Filter]:
    if ctx.query.limit is not None or ctx.query.offset:
        raise pgrst(400, "PGRST114", "limit/offset querystring parameters are not allowed for PUT")
    filters = [f for f in ctx.query.filters if isinstance(f, Filter) and f.op == "eq"
               and not f.negated and not f.modifier and not f.field.path]
    names = sorted(f.field.name for f in filters)
    if not table.primary_key or len(filters) != len(ctx.query.filters) \
            or names != sorted(table.primary_key):
        raise pgrst(405, "PGRST105", "Filters must include all and only primary key columns "
                    "with 'eq' operators")
    return filters


async def put(ctx: Context, table: Table) -> Response:
    filters = _pk_filters(ctx, table)
    payload = parse_body(ctx.body)
    rows = [payload] if isinstance(payload, dict) else payload
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise invalid_body()
    columns = parse_columns(ctx.query.columns) if ctx.query.columns is not None else list(rows[0])
    for column in columns:
        if column not in table.columns:
            raise missing_column(table, column)
    if not set(table.primary_key) <= set(columns):
        raise _mismatch()
    returning = returning_for(ctx, table)
    row_filter = sql.SQL(" AND ").join(
        render.filter_sql(_BODY, f, lambda _name: None) for f in filters)
    stmt = mutations.insert(
        table, columns, json.dumps(rows, ensure_ascii=False), returning,
        resolution="merge-duplicates", on_conflict=None,
        missing_default=ctx.prefer.get("missing") == "default", row_filter=row_filter)

    def exactly_one(result: Result) -> ApiError | None:
        return None if result.page_total == 1 else _mismatch()

    result = await ctx.gateway.executor.run(ctx.tx, stmt, authenticated=ctx.authenticated,
                                            check=exactly_one)
    applied: dict[str, str] = {k: ctx.prefer.values[k] for k in ("return", "count")
               if k in ctx.prefer.values}
    if returning.mode == "representation":
        # v13: 201 when the row was created, 200 when it replaced one (v12 answers 200).
        response = ctx.response(201 if result.inserted else 200)
        response.headers["Content-Type"] = media_type(ctx.singular, ctx.variant)
        response.body = (result.body or "").encode()
    else:
        response = ctx.response(204)
    header = preference_applied(applied)
    if header:
        response.headers["Preference-Applied"] = header
    apply_response_gucs(result, response)
    return response
