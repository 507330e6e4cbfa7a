"""Schema cache: tables, columns, functions and role settings of the exposed schemas.

Loaded once at start, reloaded on `NOTIFY pgrst, 'reload schema'` or when a request names
something the cache does not know (the gateway is more lenient than PostgREST there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from devstack.gateway import views

_TABLES = """
select n.nspname, c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
       case when a.attidentity <> '' then pg_catalog.format('nextval(%%L::regclass)',
              pg_catalog.pg_get_serial_sequence(pg_catalog.format('%%I.%%I', n.nspname, c.relname),
                                                a.attname))
            when a.attgenerated = '' then pg_catalog.pg_get_expr(d.adbin, d.adrelid) end,
       coalesce(a.attnum = any(pk.conkey), false), a.attidentity = 'a' or a.attgenerated <> '',
       a.attnotnull, c.relkind in ('v', 'm')
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
left join pg_catalog.pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
left join pg_catalog.pg_constraint pk on pk.conrelid = c.oid and pk.contype = 'p'
where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'v', 'm', 'f', 'p')
order by n.nspname, c.relname, a.attnum
"""

_FUNCTIONS = """
select n.nspname, p.proname, p.oid::int, coalesce(p.proargnames, '{}'),
       coalesce(p.proallargtypes::regtype[]::text[], p.proargtypes::regtype[]::text[]),
       coalesce(p.proargmodes::text[], '{}'), p.pronargs, p.pronargdefaults, p.proretset,
       p.prorettype = 'pg_catalog.void'::pg_catalog.regtype,
       t.typtype = 'c' or (p.prorettype = 'pg_catalog.record'::pg_catalog.regtype
                           and 'o' = any(coalesce(p.proargmodes::text[], '{}'))
                           or 't' = any(coalesce(p.proargmodes::text[], '{}'))),
       p.provolatile, rn.nspname, rc.relname
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
join pg_catalog.pg_type t on t.oid = p.prorettype
left join pg_catalog.pg_class rc on rc.oid = t.typrelid and rc.relkind in ('r', 'v', 'm', 'f', 'p')
left join pg_catalog.pg_namespace rn on rn.oid = rc.relnamespace
where n.nspname = any(%(schemas)s) and p.prokind = 'f'
"""

# Foreign keys between tables of the exposed schemas, columns in constraint order.
_FOREIGN_KEYS = """
select c.conname, n1.nspname, r1.relname, n2.nspname, r2.relname,
       array(select a.attname from unnest(c.conkey) with ordinality k(num, ord)
             join pg_catalog.pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.num
             order by k.ord)::text[],
       array(select a.attname from unnest(c.confkey) with ordinality k(num, ord)
             join pg_catalog.pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.num
             order by k.ord)::text[]
from pg_catalog.pg_constraint c
join pg_catalog.pg_class r1 on r1.oid = c.conrelid
join pg_catalog.pg_namespace n1 on n1.oid = r1.relnamespace
join pg_catalog.pg_class r2 on r2.oid = c.confrelid
join pg_catalog.pg_namespace n2 on n2.oid = r2.relnamespace
where c.contype = 'f' and n1.nspname = any(%(schemas)s) and n2.nspname = any(%(schemas)s)
order by n1.nspname, r1.relname, c.conname
"""

# Column sets that are unique (primary keys and unique constraints): one-to-one detection.
_UNIQUE_KEYS = """
select n.nspname, r.relname,
       array(select a.attname from unnest(c.conkey) k(num)
             join pg_catalog.pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.num)::text[]
from pg_catalog.pg_constraint c
join pg_catalog.pg_class r on r.oid = c.conrelid
join pg_catalog.pg_namespace n on n.oid = r.relnamespace
where c.contype in ('p', 'u') and n.nspname = any(%(schemas)s)
"""

# Only user-context settings can be set by the authenticator (PostgREST's queryRoleSettings).
_ROLE_SETTINGS = """
select r.rolname, kv[1], kv[2]
from pg_catalog.pg_db_role_setting s
join pg_catalog.pg_roles r on r.oid = s.setrole
cross join lateral unnest(s.setconfig) as cfg(item)
cross join lateral pg_catalog.regexp_split_to_array(cfg.item, '=') as kv
join pg_catalog.pg_settings ps on ps.name = kv[1]
where s.setdatabase in (0, (select oid from pg_catalog.pg_database
                            where datname = pg_catalog.current_database()))
  and ps.context = 'user'
order by s.setdatabase
"""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    default: str | None  # an identity column's is its sequence's nextval
    primary: bool
    always: bool = False  # generated, or identity GENERATED ALWAYS: only DEFAULT may be inserted
    not_null: bool = False


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: tuple[str, str]
    columns: tuple[str, ...]
    ref_table: tuple[str, str]
    ref_columns: tuple[str, ...]


@dataclass
class Table:
    schema: str
    name: str
    columns: dict[str, Column] = field(default_factory=dict)
    unique_keys: list[frozenset[str]] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)  # outgoing
    referenced_by: list[ForeignKey] = field(default_factory=list)  # incoming
    is_view: bool = False

    @property
    def primary_key(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.primary]


@dataclass(frozen=True)
class Argument:
    name: str
    type: str
    required: bool


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    oid: int
    args: tuple[Argument, ...]
    returns_set: bool
    returns_void: bool
    returns_composite: bool
    volatility: str
    returns_table: tuple[str, str] | None = None  # the table whose row type it returns

    @property
    def single_unnamed_type(self) -> str | None:
        """The type of the one unnamed parameter, which receives the whole POST body."""
        if len(self.args) == 1 and self.args[0].name == "":
            return self.args[0].type
        return None


def _function_from_row(row: tuple[Any, ...]) -> Function:
    (schema, name, oid, names, types, modes, nargs, ndefaults, retset, void, composite,
     volatility, ret_schema, ret_table) = row
    args: list[Argument] = []
    for i, arg_type in enumerate(types):
        mode = modes[i] if modes else "i"
        if mode not in ("i", "b", "v"):
            continue
        arg_name = names[i] if i < len(names) else ""
        args.append(Argument(arg_name, arg_type, True))
    first_default = nargs - ndefaults
    args = [Argument(a.name, a.type, i < first_default) for i, a in enumerate(args)]
    return Function(schema, name, oid, tuple(args), bool(retset), bool(void), bool(composite),
                    str(volatility), (ret_schema, ret_table) if ret_table else None)


class Catalog:
    def __init__(self) -> None:
        self.tables: dict[tuple[str, str], Table] = {}
        self.functions: dict[tuple[str, str], list[Function]] = {}
        self.role_settings: dict[str, dict[str, str]] = {}
        self.timezones: frozenset[str] = frozenset()

    async def load(self, conn: psycopg.AsyncConnection[Any], schemas: list[str]) -> None:
        tables: dict[tuple[str, str], Table] = {}
        functions: dict[tuple[str, str], list[Function]] = {}
        roles: dict[str, dict[str, str]] = {}
        params = {"schemas": schemas}
        cur = await conn.execute(_TABLES, params)
        for schema, rel, col, col_type, default, primary, always, not_null, is_view in \
                await cur.fetchall():
            table = tables.setdefault((schema, rel), Table(schema, rel, is_view=is_view))
            table.columns[col] = Column(col, col_type, default, primary, always, not_null)
        cur = await conn.execute(_UNIQUE_KEYS, params)
        for schema, rel, cols in await cur.fetchall():
            if (schema, rel) in tables:
                tables[(schema, rel)].unique_keys.append(frozenset(cols))
        cur = await conn.execute(_FOREIGN_KEYS, params)
        for name, schema, rel, ref_schema, ref_rel, cols, ref_cols in await cur.fetchall():
            fk = ForeignKey(name, (schema, rel), tuple(cols), (ref_schema, ref_rel),
                            tuple(ref_cols))
            if (schema, rel) in tables and (ref_schema, ref_rel) in tables:
                tables[(schema, rel)].foreign_keys.append(fk)
                tables[(ref_schema, ref_rel)].referenced_by.append(fk)
        cur = await conn.execute(views.QUERY, params)
        views.add_view_keys(tables, await cur.fetchall())
        cur = await conn.execute(_FUNCTIONS, params)
        for row in await cur.fetchall():
            fn = _function_from_row(row)
            functions.setdefault((fn.schema, fn.name), []).append(fn)
        cur = await conn.execute("select name from pg_catalog.pg_timezone_names")
        self.timezones = frozenset(name for (name,) in await cur.fetchall())
        cur = await conn.execute(_ROLE_SETTINGS)
        for role, key, value in await cur.fetchall():
            roles.setdefault(role, {})[key] = value
        self.tables, self.functions, self.role_settings = tables, functions, roles
