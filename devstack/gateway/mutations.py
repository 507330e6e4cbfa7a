"""INSERT / UPDATE / DELETE statements in PostgREST's CTE shape.

`RETURNING 1` unless a representation is asked for: returning columns makes PostgreSQL apply
the table's SELECT policies to the new rows, which is exactly the RLS behaviour clients see
against real PostgREST (write-only policy: minimal insert 201, representation 403).
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from devstack.gateway.catalog import Table
from devstack.gateway.statements import table_ident, wrap

_Composable = sql.Composable  # for annotations inside Returning, whose `sql` method shadows
_Composed = sql.Composed
WRITTEN = sql.Identifier("pgrst_written")  # the written rows, when read back with embeds

# Counts inserted rows of an upsert: +1 per proposed row, -1 per row that took the update path.
_BUMP = ("pg_catalog.set_config('pgrst.inserted', (coalesce(nullif(pg_catalog.current_setting("
         "'pgrst.inserted', true), '')::int, 0) {} 1)::text, true) <> '{}'")


@dataclass(frozen=True)
class Returning:
    mode: str  # minimal | headers-only | representation
    select: sql.Composable | None = None
    shape: str = "none"  # body shape for representation: array | object
    variant: str = "json"  # json | csv | stripped
    # (select list, joins and WHERE) reading the written rows back as WRITTEN, with embeds
    embedded: tuple[sql.Composable, sql.Composable] | None = None

    def sql(self, table: Table) -> sql.Composable:
        if self.mode == "representation" and self.embedded is not None:
            return sql.SQL(" RETURNING {}.*").format(table_ident(table))
        if self.mode == "representation" and self.select is not None:
            return sql.SQL(" RETURNING {}").format(self.select)
        if self.mode == "headers-only" and table.primary_key:
            rel = table_ident(table)
            return sql.SQL(" RETURNING {}").format(sql.SQL(", ").join(
                sql.SQL("{}.{}").format(rel, sql.Identifier(c)) for c in table.primary_key))
        return sql.SQL(" RETURNING 1")

    def body_shape(self) -> str:
        return self.shape if self.mode == "representation" else "none"

    def wrap(self, source: _Composable, *, extra: _Composable | None = None,
             inserted: bool = False) -> _Composed:
        """The statement's outer shape; with embeds, the write runs in a CTE of its own."""
        if self.embedded is None:
            return wrap(source, shape=self.body_shape(), variant=self.variant, extra=extra,
                        inserted=inserted)
        select, tail = self.embedded
        read = sql.SQL("SELECT {} FROM pgrst_written AS {}{}").format(select, WRITTEN, tail)
        return wrap(read, shape=self.body_shape(), variant=self.variant, written=source,
                    extra=extra, inserted=inserted)


def _location(returning: Returning, table: Table) -> sql.Composable | None:
    if returning.mode != "headers-only" or not table.primary_key:
        return None
    return sql.SQL("CASE WHEN pg_catalog.count(_postgrest_t) = 1 "
                   "THEN (pg_catalog.json_agg(_postgrest_t) -> 0)::text END")


def insert(table: Table, columns: list[str], rows_json: str, returning: Returning, *,
           resolution: str | None, on_conflict: list[str] | None, missing_default: bool,
           row_filter: sql.Composable | None = None) -> sql.Composed:
    """`row_filter`: a condition on the payload rows (`pgrst_body.<col>`), for PUT."""
    rel = table_ident(table)
    cols = [table.columns[c] for c in columns]
    record = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type)) for c in cols)
    values: list[sql.Composable] = []
    for c in cols:
        value = sql.SQL("pgrst_body.{}").format(sql.Identifier(c.name))
        if missing_default and c.default is not None:
            # The default expression comes from the catalogue (pg_get_expr), not from the request.
            value = sql.SQL("CASE WHEN pgrst_row.val::jsonb ? {} THEN {} ELSE {} END").format(
                sql.Literal(c.name), value, sql.SQL(c.default))
        values.append(value)
    merge = resolution == "merge-duplicates"
    source = sql.SQL(
        "INSERT INTO {rel}({cols}) SELECT {values} FROM pg_catalog.json_array_elements({body}::json)"
        " AS pgrst_row(val), LATERAL pg_catalog.json_to_record(pgrst_row.val) AS pgrst_body({rec})"
    ).format(rel=rel, cols=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
             values=sql.SQL(", ").join(values), body=sql.Literal(rows_json), rec=record)
    if not columns:
        source = sql.SQL("INSERT INTO {} SELECT * FROM {} WHERE false").format(rel, rel)
    target = on_conflict or table.primary_key
    condition = row_filter if columns else None
    if resolution and target and columns and merge:
        bump = sql.SQL(_BUMP.format("+", "0"))
        # CASE fixes the order: only rows that pass the filter are counted.
        condition = bump if condition is None else sql.SQL(
            "CASE WHEN {} THEN {} ELSE false END").format(condition, bump)
    if condition is not None:
        source += sql.SQL(" WHERE ") + condition
    if resolution and target and columns:
        conflict = sql.SQL(", ").join(sql.Identifier(c) for c in target)
        if merge:
            sets = sql.SQL(", ").join(
                sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
                for c in columns)
            source += sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {} WHERE " + _BUMP.format("-", "-1")
                              ).format(conflict, sets)
        else:
            source += sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(conflict)
    source += returning.sql(table)
    return returning.wrap(source, extra=_location(returning, table),
                          inserted=merge and bool(target))


def update(table: Table, body_json: str, columns: list[str], where: sql.Composable,
           returning: Returning) -> sql.Composed:
    rel = table_ident(table)
    if not columns:
        source = sql.SQL("SELECT {} FROM {} WHERE false").format(
            returning.select if returning.mode == "representation" and returning.select
            else sql.SQL("1"), rel)
        return returning.wrap(source)
    cols = [table.columns[c] for c in columns]
    record = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type)) for c in cols)
    sets = sql.SQL(", ").join(
        sql.SQL("{} = pgrst_body.{}").format(sql.Identifier(c), sql.Identifier(c))
        for c in columns)
    source = sql.SQL(
        "UPDATE {rel} SET {sets} FROM (SELECT * FROM pg_catalog.json_to_record({body}::json) "
        "AS pgrst_r({rec})) pgrst_body{where}"
    ).format(rel=rel, sets=sets, body=sql.Literal(body_json), rec=record, where=where)
    source += returning.sql(table)
    return returning.wrap(source)


def delete(table: Table, where: sql.Composable, returning: Returning) -> sql.Composed:
    source = sql.SQL("DELETE FROM {}{}").format(table_ident(table), where) + returning.sql(table)
    return returning.wrap(source)
