"""Keys of views, for embedding from and to them: a view column that shows a base table's
column under the same name carries that column's keys (foreign keys out of it, foreign keys
pointing at it, and the table's primary and unique keys).

Which base columns a view reads is recorded by PostgreSQL itself (pg_depend of the view's
rewrite rule); a column is matched to one by name, so a renamed column (`select a as b`) and a
name that two base tables share in one view carry no keys. Views over views are followed one
level.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the catalog calls this module while it loads
    from devstack.gateway.catalog import Table

QUERY = """
select vn.nspname, v.relname, va.attname, tn.nspname, t.relname
from pg_catalog.pg_class v
join pg_catalog.pg_namespace vn on vn.oid = v.relnamespace
join pg_catalog.pg_rewrite r on r.ev_class = v.oid
join pg_catalog.pg_depend d on d.objid = r.oid
  and d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
  and d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass and d.refobjsubid > 0
join pg_catalog.pg_class t on t.oid = d.refobjid and t.oid <> v.oid
join pg_catalog.pg_namespace tn on tn.oid = t.relnamespace
join pg_catalog.pg_attribute ta on ta.attrelid = t.oid and ta.attnum = d.refobjsubid
join pg_catalog.pg_attribute va on va.attrelid = v.oid and va.attname = ta.attname
  and va.attnum > 0 and not va.attisdropped
where v.relkind in ('v', 'm') and vn.nspname = any(%(schemas)s)
group by 1, 2, 3, 4, 5
"""


def add_view_keys(tables: dict[tuple[str, str], Table], rows: list[tuple[Any, ...]]) -> None:
    """Give each view the keys of the base columns it shows (rows of QUERY)."""
    sources: dict[tuple[str, str], dict[str, set[tuple[str, str]]]] = defaultdict(
        lambda: defaultdict(set))
    for schema, view, column, base_schema, base in rows:
        sources[(schema, view)][column].add((base_schema, base))
    # view -> base table -> the columns it shows from that table alone
    shown: dict[tuple[str, str], dict[tuple[str, str], set[str]]] = {}
    for view, view_columns in sources.items():
        by_base: dict[tuple[str, str], set[str]] = defaultdict(set)
        for column, bases in view_columns.items():
            if len(bases) == 1:
                by_base[next(iter(bases))].add(column)
        shown[view] = by_base
    for view_key, by_base in shown.items():  # keys out of the view, and its unique keys
        view = tables.get(view_key)
        if view is None:
            continue
        for base_key, columns in by_base.items():
            base = tables.get(base_key)
            if base is None:
                continue
            view.unique_keys += [k for k in base.unique_keys if k <= columns]
            for fk in list(base.foreign_keys):
                if set(fk.columns) <= columns and fk.ref_table in tables:
                    derived = dataclasses.replace(fk, table=view_key)
                    view.foreign_keys.append(derived)
                    tables[fk.ref_table].referenced_by.append(derived)
    for view_key, by_base in shown.items():  # keys pointing at what the view shows
        view = tables.get(view_key)
        if view is None:
            continue
        for base_key, columns in by_base.items():
            base = tables.get(base_key)
            for fk in list(base.referenced_by) if base is not None else []:
                if set(fk.ref_columns) <= columns and fk.table in tables:
                    derived = dataclasses.replace(fk, ref_table=view_key)
                    tables[fk.table].foreign_keys.append(derived)
                    view.referenced_by.append(derived)
