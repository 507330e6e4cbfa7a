"""Render parsed URL grammar into SQL: names as identifiers, values as untyped literals.

Values are `sql.Literal(str)` (rendered `'...'` without a cast), so PostgreSQL coerces them to
the column type exactly as PostgREST's unknown-typed parameters do (`eq.abc` on int -> 22P02).
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg import sql

from devstack.gateway.errors import pgrst
from devstack.gateway.grammar import (
    FTS,
    Field,
    Filter,
    Logic,
    OrderTerm,
    Selection,
    SelectItem,
    parse_in_list,
)

_BINARY = {
    "eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "LIKE",
    "ilike": "ILIKE", "match": "~", "imatch": "~*", "cs": "@>", "cd": "<@", "ov": "&&",
    "sl": "<<", "sr": ">>", "nxr": "&<", "nxl": "&>", "adj": "-|-",
    "isdistinct": "IS DISTINCT FROM",
}
_IS = {"null": "IS NULL", "not_null": "IS NOT NULL", "true": "IS TRUE", "false": "IS FALSE",
       "unknown": "IS UNKNOWN"}
_TSQUERY = {"fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery",
            "wfts": "websearch_to_tsquery"}

ColumnType = Callable[[str], str | None]
Labels = dict[str, sql.Composable]  # embed label -> expression NULL when nothing is related


def field_sql(qualifier: sql.Composable, field: Field) -> sql.Composable:
    column: sql.Composable = sql.SQL("{}.{}").format(qualifier, sql.Identifier(field.name))
    if not field.path:
        return column
    parts: list[sql.Composable] = [column]
    for arrow, key in field.path:
        is_index = key.lstrip("-").isdigit()
        parts.append(sql.SQL(arrow))
        parts.append(sql.SQL(key) if is_index else sql.Literal(key))
    return sql.SQL("({})").format(sql.Composed(parts))


def _array_literal(items: list[str]) -> str:
    quoted = ['"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items]
    return "{" + ",".join(quoted) + "}"


def filter_sql(qualifier: sql.Composable, f: Filter, column_type: ColumnType) -> sql.Composable:
    col = field_sql(qualifier, f.field)
    value = f.value
    expr: sql.Composable
    if f.op == "is":
        expr = sql.SQL("{} " + _IS[value.lower()]).format(col)
    elif f.op == "in":
        expr = sql.SQL("{} = ANY({})").format(col, sql.Literal(_array_literal(parse_in_list(value))))
    elif f.op in FTS:
        target = col
        if f.field.path or column_type(f.field.name) != "tsvector":
            target = (sql.SQL("to_tsvector({}, {})").format(sql.Literal(f.modifier), col)
                      if f.modifier else sql.SQL("to_tsvector({})").format(col))
        fn = sql.Identifier("pg_catalog", _TSQUERY[f.op])
        query = (sql.SQL("{}({}, {})").format(fn, sql.Literal(f.modifier), sql.Literal(value))
                 if f.modifier else sql.SQL("{}({})").format(fn, sql.Literal(value)))
        expr = sql.SQL("{} @@ {}").format(target, query)
    else:
        if f.op in ("like", "ilike"):
            value = value.replace("*", "%")
        operator = sql.SQL(_BINARY[f.op])
        if f.modifier in ("any", "all"):
            quantifier = sql.SQL(f.modifier.upper())
            expr = sql.SQL("{} {} {}({})").format(col, operator, quantifier, sql.Literal(value))
        else:
            expr = sql.SQL("{} {} {}").format(col, operator, sql.Literal(value))
    return sql.SQL("NOT ({})").format(expr) if f.negated else expr


def _embed_filter_sql(f: Filter, found: sql.Composable) -> sql.Composable:
    """`rel=is.null` / `rel=not.is.null`: parents without / with related rows."""
    if f.op != "is" or f.value.lower() not in ("null", "not_null"):
        raise pgrst(400, "PGRST120", f"Bad operator on the '{f.field.name}' embedded resource",
                    "Only is null or not is null filters are allowed on embedded resources")
    expr = sql.SQL("{} " + _IS[f.value.lower()]).format(found)
    return sql.SQL("NOT ({})").format(expr) if f.negated else expr


def condition_sql(qualifier: sql.Composable, node: Filter | Logic,
                  column_type: ColumnType, labels: Labels | None = None) -> sql.Composable:
    if isinstance(node, Filter):
        if labels and not node.field.path and node.field.name in labels:
            return _embed_filter_sql(node, labels[node.field.name])
        return filter_sql(qualifier, node, column_type)
    joiner = sql.SQL(" AND " if node.op == "and" else " OR ")
    inner = joiner.join(condition_sql(qualifier, c, column_type, labels) for c in node.children)
    expr = sql.SQL("({})").format(inner)
    return sql.SQL("NOT {}").format(expr) if node.negated else expr


def where_sql(qualifier: sql.Composable, nodes: list[Filter | Logic],
              column_type: ColumnType, labels: Labels | None = None,
              extra: list[sql.Composable] | None = None) -> sql.Composable:
    """` WHERE ...` of the filters (and `extra` conditions), or nothing."""
    parts = [condition_sql(qualifier, n, column_type, labels) for n in nodes]
    parts += extra or []
    if not parts:
        return sql.SQL("")
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts)


def select_item_sql(qualifier: sql.Composable, item: SelectItem) -> sql.Composable:
    if item.field is None:
        return sql.SQL("{}.*").format(qualifier)
    expr = field_sql(qualifier, item.field)
    if item.cast:
        expr = sql.SQL("CAST({} AS {})").format(expr, sql.SQL(item.cast))
    name = item.alias or item.field.output_name
    return sql.SQL("{} AS {}").format(expr, sql.Identifier(name))


def select_sql(qualifier: sql.Composable, items: list[Selection]) -> sql.Composable:
    """A flat select list (embeds are planned by `embed.Planner`)."""
    parts: list[sql.Composable] = []
    for item in items:
        if not isinstance(item, SelectItem):
            raise pgrst(400, "PGRST127", "Feature not implemented",
                        "resource embedding in the representation of a write")
        parts.append(select_item_sql(qualifier, item))
    return sql.SQL(", ").join(parts)


def order_sql(qualifier: sql.Composable, terms: list[OrderTerm],
              related: dict[str, sql.Composable | None] | None = None,
              origin: str = "") -> sql.Composable:
    """`related`: embed label -> the lateral holding a to-one embed's columns (None for a
    to-many embed, which cannot order its parent)."""
    if not terms:
        return sql.SQL("")
    rendered = []
    for term in terms:
        text = " DESC" if term.descending else " ASC"
        if term.nulls:
            text += " NULLS " + term.nulls.upper()
        target = qualifier
        if term.relation is not None:
            if related is None or term.relation not in related:
                raise pgrst(400, "PGRST108", f"'{term.relation}' is not an embedded resource in "
                            "this request", None, f"Verify that '{term.relation}' is included "
                            "in the 'select' query parameter.")
            lateral = related[term.relation]
            if lateral is None:
                raise pgrst(400, "PGRST118", f"A related order on '{term.relation}' is not "
                            "possible", f"'{origin}' and '{term.relation}' do not form a "
                            "many-to-one or one-to-one relationship")
            target = lateral
        rendered.append(field_sql(target, term.field) + sql.SQL(text))
    return sql.SQL(" ORDER BY ") + sql.SQL(", ").join(rendered)
