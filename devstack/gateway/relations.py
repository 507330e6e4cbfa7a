"""Relationships between tables for resource embedding, found from foreign keys as PostgREST
finds them: by target table name, narrowed by a hint (constraint name, a single FK column of
either side, or a junction table's name); none is PGRST200, more than one PGRST201 (300) with
the candidates listed. A junction is a table with keys to both sides whose columns are all in
its primary key (many-to-many)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from devstack.gateway.catalog import ForeignKey, Table
from devstack.gateway.errors import ApiError


@dataclass(frozen=True)
class Relationship:
    fk: ForeignKey
    origin: Table
    target: Table
    cardinality: str  # many-to-one | one-to-one | one-to-many
    # (origin column, target column) pairs joining one origin row to its target rows
    pairs: tuple[tuple[str, str], ...]
    outgoing: bool  # the key is on the origin (origin -> target)
    # many-to-many: the junction table, its key to the origin and its key to the target
    junction: tuple[Table, ForeignKey, ForeignKey] | None = None

    @property
    def to_one(self) -> bool:
        return self.cardinality in ("many-to-one", "one-to-one")

    def describe(self) -> dict[str, str]:
        if self.junction is not None:
            table, to_origin, to_target = self.junction
            return {"cardinality": self.cardinality,
                    "embedding": f"{self.origin.name} with {self.target.name}",
                    "relationship": f"{table.name} using {to_origin.name}"
                                    f"({', '.join(to_origin.columns)}) and {to_target.name}"
                                    f"({', '.join(to_target.columns)})"}
        origin_cols = ", ".join(o for o, _ in self.pairs)
        target_cols = ", ".join(t for _, t in self.pairs)
        return {
            "cardinality": self.cardinality,
            "embedding": f"{self.origin.name} with {self.target.name}",
            "relationship": f"{self.fk.name} using {self.origin.name}({origin_cols}) and "
                            f"{self.target.name}({target_cols})",
        }


def _junctions(origin: Table, target: Table, tables: dict[tuple[str, str], Table]
               ) -> list[Relationship]:
    found: list[Relationship] = []
    for to_origin in origin.referenced_by:
        junction = tables.get(to_origin.table)
        if junction is None:
            continue
        keys = set(junction.primary_key)
        for to_target in junction.foreign_keys:
            if to_target.name != to_origin.name and \
                    to_target.ref_table == (target.schema, target.name) and \
                    set(to_origin.columns) | set(to_target.columns) <= keys:
                found.append(Relationship(to_origin, origin, target, "many-to-many", (), False,
                                          (junction, to_origin, to_target)))
    return found


def _candidates(origin: Table, target: Table) -> list[Relationship]:
    found: list[Relationship] = []
    for fk in origin.foreign_keys:  # origin holds the key: origin -> target is to-one
        if fk.ref_table == (target.schema, target.name):
            one = frozenset(fk.columns) in origin.unique_keys
            found.append(Relationship(fk, origin, target, "one-to-one" if one else "many-to-one",
                                      tuple(zip(fk.columns, fk.ref_columns, strict=True)), True))
    for fk in origin.referenced_by:
        if fk.table == (target.schema, target.name):  # target holds the key: to-many
            one = frozenset(fk.columns) in target.unique_keys
            found.append(Relationship(fk, origin, target, "one-to-one" if one else "one-to-many",
                                      tuple(zip(fk.ref_columns, fk.columns, strict=True)), False))
    return found


def _matches_hint(rel: Relationship, hint: str) -> bool:
    if rel.junction is not None:
        return hint == rel.junction[0].name
    if hint == rel.fk.name:
        return True
    if len(rel.pairs) != 1:
        return False
    origin_col, target_col = rel.pairs[0]
    return hint in (origin_col, target_col)


def find(origin: Table, target_name: str, hint: str | None, tables: dict[tuple[str, str], Table]
         ) -> Relationship:
    target = tables.get((origin.schema, target_name))
    rels = _candidates(origin, target) + _junctions(origin, target, tables) \
        if target is not None else []
    if target is origin:
        # A self-reference has one key and two directions; the table name means the children
        # (PostgREST's convention).
        rels = [r for r in rels if not r.outgoing]
    if hint is not None:
        rels = [r for r in rels if _matches_hint(r, hint)]
    if not rels:
        raise _no_relationship(origin, target_name, hint, tables)
    if len(rels) > 1:
        names = ", ".join(f"'{r.target.name}!{r.junction[0].name if r.junction else r.fk.name}'"
                          for r in rels)
        raise ApiError(300, "PGRST201", "Could not embed because more than one relationship was "
                       f"found for '{origin.name}' and '{target_name}'",
                       [r.describe() for r in rels],
                       f"Try changing '{target_name}' to one of the following: {names}. Find the "
                       "desired relationship in the 'details' key.")
    return rels[0]


def _no_relationship(origin: Table, target_name: str, hint: str | None,
                     tables: dict[tuple[str, str], Table]) -> ApiError:
    using = f"' using the hint '{hint}" if hint else ""
    related = [fk.ref_table[1] for fk in origin.foreign_keys] + \
        [fk.table[1] for fk in origin.referenced_by]
    close = difflib.get_close_matches(target_name, related, n=1)
    hint_text = f"Perhaps you meant '{close[0]}' instead of '{target_name}'." \
        if close and close[0] != target_name else None
    return ApiError(400, "PGRST200", f"Could not find a relationship between '{origin.name}' and "
                    f"'{target_name}' in the schema cache",
                    f"Searched for a foreign key relationship between '{origin.name}' and "
                    f"'{target_name}{using}' in the schema '{origin.schema}', but no matches "
                    "were found.", hint_text)
