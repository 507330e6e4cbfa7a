"""RPC (`/rpc/<fn>`): overload resolution by argument names, call shape, tx access mode."""

from __future__ import annotations

import json
from typing import Any

from psycopg import sql

from devstack.gateway import embed, render, statements
from devstack.gateway.actions import Context, parse_body, read_response, use_planned
from devstack.gateway.catalog import Function
from devstack.gateway.errors import ApiError, pgrst
from devstack.gateway.executor import Result
from devstack.gateway.grammar import parse_field, parse_operation, parse_select
from devstack.gateway.request import page_bounds
from devstack.gateway.response import Response, apply_response_gucs, singular_error

# POST bodies that a single unnamed parameter of this type receives whole (PostgREST's rule).
_UNNAMED_MEDIA = {"json": "application/json", "jsonb": "application/json",
                  "text": "text/plain", "xml": "text/xml", "bytea": "application/octet-stream"}
_RAW_MEDIA = {"text/plain": "text", "text/xml": "xml", "application/octet-stream": "bytea"}


def _not_found(schema: str, name: str, keys: list[str], media: str, post: bool) -> ApiError:
    listed = ", ".join(sorted(keys))
    func = f"{schema}.{name}"
    raw = post and media in _RAW_MEDIA
    params = (f" with parameter{'s' if len(keys) > 1 else ''} {listed}" if keys
              else " without parameters")
    if raw:
        searched = f" with a single unnamed {_RAW_MEDIA[media]} parameter"
    elif post and media == "application/json":
        searched = params + " or with a single unnamed json/jsonb parameter"
    else:
        searched = params
    message = f"Could not find the function {func}" + (
        "" if raw else (f"({listed})" if keys else " without parameters")) + " in the schema cache"
    return pgrst(404, "PGRST202", message,
                 f"Searched for the function {func}{searched}, but no matches were found in the "
                 "schema cache.")


def _describe(fn: Function) -> str:
    args = ", ".join(f"{a.name} => {a.type}" for a in fn.args)
    return f"{fn.schema}.{fn.name}({args})"


def _matches(fn: Function, keys: set[str], media: str, post: bool) -> bool:
    if not fn.args:
        return not keys and not (post and media in _RAW_MEDIA)
    required = {a.name for a in fn.args if a.required}
    return required <= keys <= {a.name for a in fn.args}


def resolve(schema: str, name: str, candidates: list[Function], keys: set[str],
            *, post: bool, media: str = "application/json") -> Function:
    """PostgREST's findProc: functions whose parameter names fit the argument keys (required
    ones present, no unknown key); failing that, on POST, a function with one unnamed parameter
    whose type fits the body's media type. More than one is PGRST203 (300)."""
    matches = [fn for fn in candidates if _matches(fn, keys, media, post)]
    if not matches and post:
        matches = [fn for fn in candidates if fn.single_unnamed_type is not None
                   and _UNNAMED_MEDIA.get(fn.single_unnamed_type) == media]
    if not matches:
        raise _not_found(schema, name, sorted(keys), media, post)
    if len(matches) > 1:
        raise pgrst(300, "PGRST203", "Could not choose the best candidate function between: "
                    + ", ".join(_describe(fn) for fn in matches), None,
                    "Try renaming the parameters or the function itself in the database so "
                    "function overloading can be resolved")
    return matches[0]


def _media(ctx: Context) -> str:
    if ctx.content_type is None or ctx.content_type.startswith("application/json"):
        return "application/json"
    media = ctx.content_type.split(";")[0].strip().lower()
    return media if media in _RAW_MEDIA else "application/json"


def _arguments(ctx: Context, candidates: list[Function], media: str) -> dict[str, Any] | None:
    """Named arguments; None when the POST body is not a JSON object (it can only go whole to
    a single unnamed parameter)."""
    if ctx.method == "POST":
        if ctx.query.raw_filters:  # on POST every query parameter filters the result
            ctx.query.filters.extend(parse_operation(parse_field(k), v)
                                     for k, v in ctx.query.raw_filters)
            ctx.query.raw_filters = []
        if media in _RAW_MEDIA:
            return None
        payload = parse_body(ctx.body, empty={})
        return payload if isinstance(payload, dict) else None
    arg_names = {a.name for fn in candidates for a in fn.args}
    args: dict[str, Any] = {}
    for key, value in ctx.query.raw_filters:
        if key in arg_names:
            args[key] = value
        else:
            ctx.query.filters.append(parse_operation(parse_field(key), value))
    ctx.query.raw_filters = []
    return args


def _max_affected(ctx: Context, fn: Function) -> int | None:
    if "max-affected" not in ctx.prefer.values or ctx.prefer.get("handling") != "strict":
        return None
    if not fn.returns_set:
        raise pgrst(400, "PGRST128", "Function must return SETOF or TABLE when max-affected "
                    "preference is used with handling=strict")
    return int(ctx.prefer.values["max-affected"])


async def call(ctx: Context, name: str, candidates: list[Function]) -> Response:
    if ctx.method not in ("GET", "HEAD", "POST"):
        raise pgrst(405, "PGRST101", f"Cannot use the {ctx.method} method on RPC")
    post = ctx.method == "POST"
    media = _media(ctx) if post else "application/json"
    args = _arguments(ctx, candidates, media)
    fn = resolve(ctx.schema, name, candidates, set(args or ()), post=post, media=media)
    raw_json: str | bytes | None = None
    unnamed = fn.single_unnamed_type
    if args is None or unnamed is not None:
        # The single unnamed parameter takes the body as it came.
        args = None
        raw_json = ctx.body if unnamed == "bytea" else \
            (ctx.body.decode() or ("{}" if media == "application/json" else ""))
    if ctx.variant == "csv" and not fn.returns_composite and not fn.returns_void:
        # CSV is made of rows with named columns; a scalar result has neither.
        raise pgrst(406, "PGRST107", "None of these media types are available: text/csv")
    max_affected = _max_affected(ctx, fn)
    ctx.tx.read_only = ctx.method != "POST" or fn.volatility != "v"
    plain = ctx.query.plain() and not ctx.singular and not ctx.count_requested() and not (
        ctx.range_header and ctx.method == "GET") and max_affected is None
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
    related: dict[str, sql.Composable | None] = {}
    if embed.has_embeds(items) or ctx.query.embedded:
        table = ctx.gateway.catalog.tables.get(fn.returns_table) if fn.returns_table else None
        planned = embed.Planner(ctx.gateway.catalog, ctx.query.embedded,
                                (fn.schema, fn.name)).plan(table, call_ident, items)
        select, joins = planned.select_sql(), planned.joins_sql()
        where = render.where_sql(call_ident, ctx.query.filters, embed.column_type(table),
                                 planned.labels, planned.conditions)
        related = planned.related
    else:
        select = render.select_sql(call_ident, items)
        where = render.where_sql(call_ident, ctx.query.filters, lambda _name: None)
    order = render.order_sql(call_ident, ctx.query.order, related, fn.name)
    method = ctx.prefer.get("count")
    stmt = statements.read_rpc(
        fn, prefix, call_sql, select=select, joins=joins, where=where, order=order,
        page=statements.Page(lower, limit), count=method in ("exact", "estimated"),
        singular=ctx.singular, variant=ctx.variant)
    explain = statements.rpc_source(fn, prefix, call_sql, select=select, where=where,
                                    order=order, singular=False, joins=joins)[0] \
        if method in ("planned", "estimated") and not fn.returns_void else None

    def check(result: Result) -> ApiError | None:
        if ctx.singular and result.page_total != 1:
            return singular_error(result.page_total)
        if max_affected is not None and result.page_total > max_affected:
            return pgrst(400, "PGRST124", "Query result exceeds max-affected preference "
                         "constraint", f"The query affects {result.page_total} rows")
        return None

    needs_check = (ctx.singular and not ctx.tx.read_only) or max_affected is not None
    result = await ctx.gateway.executor.run(ctx.tx, stmt, authenticated=ctx.authenticated,
                                            check=check if needs_check else None,
                                            explain=explain)
    use_planned(ctx, result)
    return _response(ctx, fn, result, lower)


def _response(ctx: Context, fn: Function, result: Result, lower: int) -> Response:
    if fn.returns_void:
        response = ctx.response(204)
        apply_response_gucs(result, response)
        return response
    return read_response(ctx, result, lower, head=ctx.method == "HEAD", max_affected=True)

