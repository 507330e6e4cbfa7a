"""Resource embedding as SQL: one statement, each embedded resource a LEFT JOIN LATERAL subquery
that reads the related table as the caller (its own RLS applies) and aggregates to JSON.

to-one   LEFT JOIN LATERAL (SELECT row_to_json(r) AS pgrst_body, r.* FROM (<child rows>) r) e
to-many  LEFT JOIN LATERAL (SELECT json_agg(r) AS pgrst_body FROM (<child rows>) r) e
spread   the child's columns hoisted into the parent (arrays of values for to-many)

`e.pgrst_body IS NULL` means no related row: `!inner` puts `IS NOT NULL` in the parent's WHERE, and
`rel=is.null` / `rel=not.is.null` filter on it. Embedded filters, order and paging (`rel.col=`,
`rel.order=`, `rel.limit=`) shape the child rows only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg import sql

from devstack.gateway import relations, render
from devstack.gateway.catalog import Catalog, Table
from devstack.gateway.errors import pgrst
from devstack.gateway.grammar import Embed, Filter, Logic, Selection, SelectItem
from devstack.gateway.request import EmbedParams, not_embedded

_FOUND = sql.Identifier("pgrst_found")
_BODY = sql.Identifier("pgrst_body")


@dataclass
class Selected:
    """A select list with what it needs: lateral joins, conditions for the WHERE, and for each
    embed label the expression that is NULL when nothing is related."""

    select: list[sql.Composable] = field(default_factory=list)
    joins: list[sql.Composable] = field(default_factory=list)
    conditions: list[sql.Composable] = field(default_factory=list)
    labels: dict[str, sql.Composable] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    # label -> the lateral exposing a to-one embed's columns (None: to-many), for related order
    related: dict[str, sql.Composable | None] = field(default_factory=dict)

    def select_sql(self) -> sql.Composable:
        return sql.SQL(", ").join(self.select) if self.select else sql.SQL("NULL AS pgrst_empty")

    def joins_sql(self) -> sql.Composable:
        return sql.Composed(self.joins) if self.joins else sql.SQL("")


def has_embeds(items: list[Selection]) -> bool:
    return any(isinstance(i, Embed) for i in items)


def column_type(table: Table | None) -> render.ColumnType:
    def lookup(name: str) -> str | None:
        column = table.columns.get(name) if table is not None else None
        return column.type if column else None
    return lookup


def uses_labels(nodes: list[Filter | Logic], labels: dict[str, sql.Composable]) -> bool:
    for node in nodes:
        if isinstance(node, Filter):
            if not node.field.path and node.field.name in labels:
                return True
        elif uses_labels(list(node.children), labels):
            return True
    return False


def _equal(left: sql.Composable, left_cols: tuple[str, ...], right: sql.Composable,
           right_cols: tuple[str, ...]) -> list[sql.Composable]:
    return [sql.SQL("{}.{} = {}.{}").format(left, sql.Identifier(a), right, sql.Identifier(b))
            for a, b in zip(left_cols, right_cols, strict=True)]


def _join(rel: relations.Relationship, parent: sql.Composable, child: sql.Composable,
          via: sql.Composable) -> tuple[sql.Composable, list[sql.Composable]]:
    """(a JOIN through the junction for many-to-many, or nothing; the conditions tying the
    child rows to the parent row)."""
    if rel.function is not None:  # the function's argument ties its rows to the parent
        return sql.SQL(""), []
    if rel.junction is None:
        return sql.SQL(""), _equal(child, tuple(t for _, t in rel.pairs),
                                   parent, tuple(o for o, _ in rel.pairs))
    junction, to_origin, to_target = rel.junction  # read under the junction's RLS too
    through = sql.SQL(" JOIN {} AS {} ON {}").format(
        sql.Identifier(junction.schema, junction.name), via,
        sql.SQL(" AND ").join(_equal(via, to_target.columns, child, to_target.ref_columns)))
    return through, _equal(via, to_origin.columns, parent, to_origin.ref_columns)


class Planner:
    def __init__(self, catalog: Catalog, params: dict[tuple[str, ...], EmbedParams],
                 origin: tuple[str, str] = ("", "")) -> None:
        """`origin`: (schema, name) of a function whose result is not a table's rows."""
        self.tables = catalog.tables
        self.functions = catalog.functions
        self.origin = origin
        self.params = dict(params)
        self.counter = 0
        self.aliased: dict[tuple[str, ...], str] = {}  # path by a target's name -> its alias

    def plan(self, table: Table | None, qualifier: sql.Composable, items: list[Selection]
             ) -> Selected:
        selected = self._plan(table, qualifier, items, ())
        for path in self.params:  # parameters naming no embedded resource
            alias = self.aliased.get(path)
            if alias is not None:
                raise pgrst(400, "PGRST108", f"'{path[-1]}' is not an embedded resource in this "
                            "request", "Target names are not allowed in filters if they have "
                            "an alias", f"Change '{path[-1]}' to '{alias}' in filters, orders "
                            "or limits.")
            raise not_embedded(".".join(path))
        return selected

    def _plan(self, table: Table | None, qualifier: sql.Composable, items: list[Selection],
              path: tuple[str, ...]) -> Selected:
        out = Selected()
        for item in items:
            if isinstance(item, SelectItem):
                out.select.append(render.select_item_sql(qualifier, item))
                if item.field is None:
                    out.names.extend(table.columns if table is not None else ())
                else:
                    out.names.append(item.alias or item.field.output_name)
            else:
                self._embed(table, qualifier, item, path, out)
        return out

    def _embed(self, origin: Table | None, qualifier: sql.Composable, item: Embed,
               path: tuple[str, ...], out: Selected) -> None:
        if origin is None:  # a function's result that is no table's rows relates to nothing
            schema, name = self.origin
            raise pgrst(400, "PGRST200", f"Could not find a relationship between '{name}' and "
                        f"'{item.name}' in the schema cache", "Searched for a foreign key "
                        f"relationship between '{name}' and '{item.name}' in the schema "
                        f"'{schema}', but no matches were found.")
        rel = relations.find(origin, item.name, item.hint, self.tables, self.functions)
        child_path = (*path, item.label)
        if item.alias is not None:
            self.aliased[(*path, item.name)] = item.alias
        params = self.params.pop(child_path, None) or EmbedParams()
        self.counter += 1
        n = self.counter
        child_q = sql.Identifier(f"pgrst_{n}")
        lateral = sql.Identifier(f"pgrst_e{n}")
        rows = sql.Identifier(f"pgrst_r{n}")
        child = self._plan(rel.target, child_q, list(item.items), child_path)
        source: sql.Composable = sql.Identifier(rel.target.schema, rel.target.name)
        if rel.function is not None:  # computed: the function of the parent's row
            source = sql.SQL("{}({}.*)").format(
                sql.Identifier(rel.function.schema, rel.function.name), qualifier)
        through, conditions = _join(rel, qualifier, child_q, sql.Identifier(f"pgrst_j{n}"))
        types = column_type(rel.target)
        conditions += [render.condition_sql(child_q, f, types, child.labels)
                       for f in params.filters]
        conditions += child.conditions
        page: sql.Composable = sql.SQL("")
        if params.limit is not None:
            page += sql.SQL(" LIMIT {}").format(sql.Literal(params.limit))
        if params.offset:
            page += sql.SQL(" OFFSET {}").format(sql.Literal(params.offset))
        inner = sql.SQL("SELECT {} FROM {} AS {}{}{} WHERE {}{}{}").format(
            child.select_sql(), source, child_q, through, child.joins_sql(),
            sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("TRUE"),
            render.order_sql(child_q, params.order, child.related, rel.target.name), page)
        if item.spread:
            found = sql.SQL("{}.{}").format(lateral, _FOUND)
            if rel.to_one:
                body = sql.SQL("SELECT true AS {}, {}.* FROM ({}) {}").format(
                    _FOUND, rows, inner, rows)
                out.select += [sql.SQL("{}.{} AS {}").format(lateral, sql.Identifier(name),
                                                             sql.Identifier(name))
                               for name in child.names]
            else:
                aggregates = [sql.SQL("pg_catalog.json_agg({}.{}) AS {}").format(
                    rows, sql.Identifier(name), sql.Identifier(name)) for name in child.names]
                body = sql.SQL("SELECT {} FROM ({}) {}").format(
                    sql.SQL(", ").join([sql.SQL("pg_catalog.bool_or(true) AS {}").format(_FOUND),
                                        *aggregates]), inner, rows)
                out.select += [sql.SQL("coalesce({}.{}, '[]'::json) AS {}").format(
                    lateral, sql.Identifier(name), sql.Identifier(name))
                    for name in child.names]
            out.names.extend(child.names)
        else:
            found = sql.SQL("{}.{}").format(lateral, _BODY)
            if rel.to_one:  # the columns too, typed, for a related order
                body = sql.SQL("SELECT pg_catalog.row_to_json({}) AS pgrst_body, {}.* "
                               "FROM ({}) {}").format(rows, rows, inner, rows)
                value: sql.Composable = found
            else:
                body = sql.SQL("SELECT pg_catalog.json_agg({}) AS pgrst_body FROM ({}) {}"
                               ).format(rows, inner, rows)
                value = sql.SQL("coalesce({}, '[]'::json)").format(found)
            if item.items:  # an empty embed `rel()` only filters (with !inner), never shows
                out.select.append(sql.SQL("{} AS {}").format(value, sql.Identifier(item.label)))
                out.names.append(item.label)
        out.joins.append(sql.SQL(" LEFT JOIN LATERAL ({}) {} ON TRUE").format(body, lateral))
        out.related[item.label] = lateral if rel.to_one else None
        out.labels[item.label] = found
        if item.join == "inner":
            out.conditions.append(sql.SQL("{} IS NOT NULL").format(found))
