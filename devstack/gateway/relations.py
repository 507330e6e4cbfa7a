"""Relationships between tables for resource embedding, found as PostgREST finds them.

A table's relationships: its foreign keys (many-to-one, or one-to-one when the key columns are
unique), the keys referencing it (one-to-many, or one-to-one), junction tables with keys to it
and to another table whose columns are all in the junction's primary key (many-to-many), and
computed relationships: functions taking its row and returning rows of a table.

An embed target matches a relationship by the related table's name, a constraint name, or the
origin's single key column (`select=*,client_id(*)`), or by the function's name; a hint narrows
it by constraint name, a single key column of either side, or the junction's name. None is
PGRST200, more than one PGRST201 (300) with the candidates listed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from devstack.gateway.catalog import ForeignKey, Function, Table
from devstack.gateway.errors import ApiError

Tables = dict[tuple[str, str], Table]
Functions = dict[tuple[str, str], list[Function]]


@dataclass(frozen=True)
class Relationship:
    fk: ForeignKey | None  # None for a computed relationship
    origin: Table
    target: Table
    cardinality: str  # many-to-one | one-to-one | one-to-many | many-to-many
    # (origin column, target column) pairs joining one origin row to its target rows
    pairs: tuple[tuple[str, str], ...]
    outgoing: bool  # the key is on the origin (origin -> target)
    # many-to-many: the junction table, its key to the origin and its key to the target
    junction: tuple[Table, ForeignKey, ForeignKey] | None = None
    function: Function | None = None  # a computed relationship: function(origin row)

    @property
    def to_one(self) -> bool:
        return self.cardinality in ("many-to-one", "one-to-one")

    @property
    def name(self) -> str:
        """What a hint names it by in PGRST201's hint."""
        if self.junction is not None:
            return self.junction[0].name
        return self.fk.name if self.fk is not None else ""

    def describe(self) -> dict[str, str]:
        if self.junction is not None:
            table, to_origin, to_target = self.junction
            relationship = (f"{table.name} using {to_origin.name}({', '.join(to_origin.columns)})"
                            f" and {to_target.name}({', '.join(to_target.columns)})")
        else:
            origin_cols = ", ".join(o for o, _ in self.pairs)
            target_cols = ", ".join(t for _, t in self.pairs)
            relationship = (f"{self.name} using {self.origin.name}({origin_cols}) and "
                            f"{self.target.name}({target_cols})")
        return {"cardinality": self.cardinality,
                "embedding": f"{self.origin.name} with {self.target.name}",
                "relationship": relationship}


def _key_relationships(origin: Table, tables: Tables) -> list[Relationship]:
    found: list[Relationship] = []
    for fk in origin.foreign_keys:  # origin holds the key: to-one
        target = tables.get(fk.ref_table)
        if target is not None:
            one = frozenset(fk.columns) in origin.unique_keys
            found.append(Relationship(fk, origin, target, "one-to-one" if one else "many-to-one",
                                      tuple(zip(fk.columns, fk.ref_columns, strict=True)), True))
    for fk in origin.referenced_by:  # the other table holds the key: to-many
        target = tables.get(fk.table)
        if target is not None:
            one = frozenset(fk.columns) in target.unique_keys
            found.append(Relationship(fk, origin, target, "one-to-one" if one else "one-to-many",
                                      tuple(zip(fk.ref_columns, fk.columns, strict=True)),
                                      False))
            found.extend(_through(origin, target, fk, tables))
    return found


def _through(origin: Table, junction: Table, to_origin: ForeignKey, tables: Tables
             ) -> list[Relationship]:
    """Many-to-many relationships of `origin` through `junction`."""
    keys = set(junction.primary_key)
    found: list[Relationship] = []
    for to_target in junction.foreign_keys:
        target = tables.get(to_target.ref_table)
        if target is not None and to_target.name != to_origin.name and \
                set(to_origin.columns) | set(to_target.columns) <= keys:
            found.append(Relationship(to_origin, origin, target, "many-to-many", (), False,
                                      (junction, to_origin, to_target)))
    return found


def _row_type_names(table: Table) -> set[str]:
    return {table.name, f"{table.schema}.{table.name}", f'"{table.name}"',
            f'{table.schema}."{table.name}"'}


def _computed(origin: Table, name: str, tables: Tables, functions: Functions
              ) -> list[Relationship]:
    found: list[Relationship] = []
    for fn in functions.get((origin.schema, name), []):
        target = tables.get(fn.returns_table) if fn.returns_table else None
        if target is not None and fn.args and fn.args[0].type in _row_type_names(origin) \
                and not any(a.required for a in fn.args[1:]):
            found.append(Relationship(None, origin, target, "one-to-many" if fn.returns_set
                                      else "many-to-one", (), True, None, fn))
    return found


def _single_columns(rel: Relationship) -> tuple[str, str] | None:
    return rel.pairs[0] if len(rel.pairs) == 1 and rel.junction is None else None


def _matches(rel: Relationship, target: str, hint: str | None) -> bool:
    cols = _single_columns(rel)
    if rel.target is rel.origin and rel.junction is None:
        # A self-reference has one key and two directions: the table's name means the
        # children, the key column's name the parent (PostgREST's convention).
        if hint is None:
            return (target == rel.target.name and not rel.outgoing) or (
                rel.outgoing and cols is not None and cols[0] == target)
        return target == rel.target.name and not rel.outgoing and cols is not None \
            and cols[1] == hint
    if hint is None:  # a key's name or column as the target names a table, never a view
        return target == rel.target.name or (not rel.target.is_view and (
            (cols is not None and cols[0] == target)
            or (rel.junction is None and rel.fk is not None and target == rel.fk.name)))
    return target == rel.target.name and (
        hint == rel.name or (cols is not None and hint in cols))


def find(origin: Table, target: str, hint: str | None, tables: Tables,
         functions: Functions | None = None) -> Relationship:
    rels = [r for r in _key_relationships(origin, tables) if _matches(r, target, hint)]
    if hint is None:
        rels += _computed(origin, target, tables, functions or {})
    if not rels:
        raise _no_relationship(origin, target, hint, tables)
    if len(rels) > 1:
        names = ", ".join(f"'{r.target.name}!{r.name}'" for r in rels)
        raise ApiError(300, "PGRST201", "Could not embed because more than one relationship was "
                       f"found for '{origin.name}' and '{target}'",
                       [r.describe() for r in rels],
                       f"Try changing '{target}' to one of the following: {names}. Find the "
                       "desired relationship in the 'details' key.")
    return rels[0]


def _no_relationship(origin: Table, target: str, hint: str | None, tables: Tables) -> ApiError:
    using = f"' using the hint '{hint}" if hint else ""
    related = sorted({r.target.name for r in _key_relationships(origin, tables)})
    close = difflib.get_close_matches(target, related, n=1)
    hint_text = f"Perhaps you meant '{close[0]}' instead of '{target}'." \
        if close and close[0] != target else None
    return ApiError(400, "PGRST200", f"Could not find a relationship between '{origin.name}' and "
                    f"'{target}' in the schema cache",
                    f"Searched for a foreign key relationship between '{origin.name}' and "
                    f"'{target}{using}' in the schema '{origin.schema}', but no matches "
                    "were found.", hint_text)
