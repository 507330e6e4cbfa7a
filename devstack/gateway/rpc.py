"""RPC (`/rpc/<fn>`): overload resolution by argument names, call shape, tx access mode."""

from __future__ import annotations

import json
from typing import Any

from psycopg import sql

from devstack.gateway import embed, render, statements
from devstack.gateway.actions import Context, parse_body, read_response
from devstack.gateway.catalog import Function
from devstack.gateway.errors import ApiError, pgrst
from devstack.gateway.executor import Result
from devstack.gateway.grammar import parse_field, parse_operation, parse_select
from devstack.gateway.request import page_bounds
from devstack.gateway.response import Response, apply_response_gucs, singular_error


def _not_found(schema: str, name: str, keys: list[str]) -> ApiError:
    listed = ", ".join(sorted(keys))
    detail = (f"Searched for the function {schema}.{name} with parameters {listed} or with a "
              "single unnamed json/jsonb parameter, but no matches were found in the schema cache."
              if keys else
              f"Searched for the function {schema}.{name} without parameters, but no matches "
              "were found in the schema cache.")
    return pgrst(404, "PGRST202", f"Could not find the function {schema}.{name}({listed}) in "
                 "the schema cache", detail)


def _describe(fn: Function) -> str:
    args = ", ".join(f"{a.name} => {a.type}" for a in fn.args)
    return f"{fn.schema}.{fn.name}({args})"


def resolve(schema: str, name: str, candidates: list[Function], keys: set[str] | None,
            *, post: bool) -> Function:
    """Match by argument names (`keys` None: a non-object body, only a json param can take it)."""
    matches: list[Function] = []
    if keys is not None:
        for fn in candidates:
            names = {a.name for a in fn.args}
            required = {a.name for a in fn.args if a.required}
            if "" not in names and required <= keys <= names:
                matches.append(fn)
        if len(matches) > 1:
            matches = [fn for fn in matches if {a.name for a in fn.args} == keys] or matches
    if not matches and post:
        matches = [fn for fn in candidates if fn.single_json_param]
    if not matches:
        raise _not_found(schema, name, sorted(keys or ()))
    if len(matches) > 1:
        raise pgrst(300, "PGRST203", "Could not choose the best candidate function between: "
                    + ", ".join(_describe(fn) for fn in matches), None,
                    "Try renaming the parameters or the function itself in the database so "
                    "function overloading can be resolved")
    return matches[0]


def _arguments(ctx: Context, candidates: list[Function]) -> tuple[dict[str, Any] | None, str | None]:
    """(named arguments, or None when the POST body is not an object; the raw body then)."""
    if ctx.method == "POST":
        # Every query parameter filters the result on POST (arguments are in the body).
        ctx.query.filters.extend(parse_operation(parse_field(k), v)
                                 for k, v in ctx.query.raw_filters)
        ctx.query.raw_filters = []
        payload = parse_body(ctx.body, empty={})
        if isinstance(payload, dict):
            return payload, None
        return None, ctx.body.decode()
    arg_names = {a.name for fn in candidates for a in fn.args}
    args: dict[str, Any] = {}
    for key, value in ctx.query.raw_filters:
        if key in arg_names:
            args[key] = value
        else:
            ctx.query.filters.append(parse_operation(parse_field(key), value))
    ctx.query.raw_filters = []
    return args, None


async def call(ctx: Context, name: str, candidates: list[Function]) -> Response:
    if ctx.method not in ("GET", "HEAD", "POST"):
        raise pgrst(405, "PGRST101", f"Cannot use the {ctx.method} method on RPC")
    args, raw_json = _arguments(ctx, candidates)
    post = ctx.method == "POST"
    fn = resolve(ctx.schema, name, candidates, set(args) if args is not None else None, post=post)
    if fn.single_json_param and post:
        args, raw_json = None, (ctx.body.decode() or "{}")
    ctx.tx.read_only = ctx.method != "POST" or fn.volatility != "v"
    plain = ctx.query.plain() and not ctx.singular and not ctx.count_requested() and not (
        ctx.range_header and ctx.method == "GET")
    fast = statements.plain_rpc(fn, args) if plain and args is not None else None
    if fast is not None:
        result = await ctx.gateway.executor.run(ctx.tx, fast, authenticated=ctx.authenticated)
        return _response(ctx, fn, result, 0)
    # Serialised only here: the plain shape above inlines the arguments as literals.
    args_json = raw_json if args is None else json.dumps(args, ensure_ascii=False)
    prefix, call_sql = statements.rpc_call(fn, args, args_json)
    lower, limit = page_bounds(ctx.query, ctx.range_header if ctx.method == "GET" else None,
                               ctx.gateway.settings.max_rows if fn.returns_set else None)
    items = parse_select(ctx.query.select)
    call_ident = statements.CALL
    joins: sql.Composable = sql.SQL("")
    if embed.has_embeds(items) or ctx.query.embedded:
        table = ctx.gateway.catalog.tables.get(fn.returns_table) if fn.returns_table else None
        planned = embed.Planner(ctx.gateway.catalog.tables, ctx.query.embedded).plan(
            table, call_ident, items)
        select, joins = planned.select_sql(), planned.joins_sql()
        where = render.where_sql(call_ident, ctx.query.filters, embed.column_type(table),
                                 planned.labels, planned.conditions)
    else:
        select = render.select_sql(call_ident, items)
        where = render.where_sql(call_ident, ctx.query.filters, lambda _name: None)
    stmt = statements.read_rpc(
        fn, prefix, call_sql, select=select, joins=joins, where=where,
        order=render.order_sql(call_ident, ctx.query.order), page=statements.Page(lower, limit),
        count=ctx.count_requested(), singular=ctx.singular)

    def check(result: Result) -> ApiError | None:
        return singular_error(result.page_total) if result.page_total != 1 else None

    needs_check = ctx.singular and not ctx.tx.read_only
    result = await ctx.gateway.executor.run(ctx.tx, stmt, authenticated=ctx.authenticated,
                                            check=check if needs_check else None)
    return _response(ctx, fn, result, lower)


def _response(ctx: Context, fn: Function, result: Result, lower: int) -> Response:
    if fn.returns_void:
        response = ctx.response(204)
        apply_response_gucs(result, response)
        return response
    return read_response(ctx, result, lower, head=ctx.method == "HEAD")

