"""PostgREST's URL grammar: select lists, filters, logic trees, order terms (parse only)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from devstack.gateway.errors import ApiError, parse_error, pgrst

OPERATORS = frozenset({
    "eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "in", "is",
    "isdistinct", "fts", "plfts", "phfts", "wfts", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl",
    "adj",
})
QUANTIFIABLE = frozenset({"eq", "like", "ilike", "gt", "gte", "lt", "lte", "match", "imatch"})
FTS = frozenset({"fts", "plfts", "phfts", "wfts"})
IS_VALUES = frozenset({"null", "not_null", "true", "false", "unknown"})
_OP_RE = re.compile(r"([a-z]+)(?:\(([A-Za-z0-9_]+)\))?")
_PATH_RE = re.compile(r"(->>|->)")
_RELATED_ORDER_RE = re.compile(r"^([^.()]+)\(([^()]+)\)(.*)$")
_AGGREGATE_RE = re.compile(r"(?:\w+\.)?(count|sum|avg|min|max)\(\)")


@dataclass(frozen=True)
class Field:
    name: str
    path: tuple[tuple[str, str], ...] = ()

    @property
    def output_name(self) -> str:
        return self.path[-1][1] if self.path else self.name


@dataclass(frozen=True)
class Filter:
    field: Field
    op: str
    value: str
    negated: bool = False
    modifier: str | None = None


@dataclass(frozen=True)
class Logic:
    op: str
    children: tuple[Filter | Logic, ...]
    negated: bool = False


@dataclass(frozen=True)
class SelectItem:
    field: Field | None  # None means `*`
    alias: str | None = None
    cast: str | None = None


@dataclass(frozen=True)
class Embed:
    """`[alias:]name[!hint][!inner|!left](items)` or a spread `...name[!hint](items)`."""

    name: str
    items: tuple[SelectItem | Embed, ...]
    alias: str | None = None
    hint: str | None = None
    join: str | None = None  # inner | left
    spread: bool = False

    @property
    def label(self) -> str:
        return self.alias or self.name


Selection = SelectItem | Embed


@dataclass(frozen=True)
class OrderTerm:
    field: Field
    descending: bool = False
    nulls: str | None = None
    relation: str | None = None  # `rel(col)`: a column of a to-one embed


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == '"' and name[-1] == '"':
        return name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return name


def parse_field(text: str) -> Field:
    parts = _PATH_RE.split(text.strip())
    name = _unquote(parts[0].strip())
    if not name:
        raise parse_error(f'"failed to parse field ({text})"')
    path = tuple((parts[i], _unquote(parts[i + 1])) for i in range(1, len(parts) - 1, 2))
    if any(not key for _, key in path):
        raise parse_error(f'"failed to parse field ({text})"')
    return Field(name, path)


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside double quotes, parentheses and braces."""
    out: list[str] = []
    depth, quoted, start, i = 0, False, 0, 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        elif ch == sep and depth == 0:
            out.append(text[start:i])
            start = i + 1
        i += 1
    out.append(text[start:])
    return out


def parse_operation(field: Field, raw: str, *, in_tree: bool = False) -> Filter:
    """`[not.]op[(mod)].value` for `field`; unknown operators are PGRST100."""
    text = raw
    negated = text.startswith("not.")
    if negated:
        text = text[4:]
    op_text, dot, value = text.partition(".")
    match = _OP_RE.fullmatch(op_text)
    if not dot or match is None or match.group(1) not in OPERATORS:
        raise parse_error(f'"failed to parse filter ({raw})" (line 1, column 1)',
                          "unexpected operator or value")
    op, modifier = match.group(1), match.group(2)
    if modifier is not None and not (
        (op in QUANTIFIABLE and modifier in ("any", "all")) or op in FTS
    ):
        raise parse_error(f'"failed to parse filter ({raw})" (line 1, column 1)')
    if in_tree and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = _unquote(value)
    if op == "is" and value.lower() not in IS_VALUES:
        raise parse_error(f'"failed to parse filter ({raw})" (line 1, column 1)',
                          'unexpected value, expecting "null", "not_null", "true", "false" '
                          'or "unknown"')
    if op == "in" and not (value.startswith("(") and value.endswith(")")):
        raise parse_error(f'"failed to parse filter ({raw})" (line 1, column 1)',
                          'expecting "(" and ")" around the list')
    return Filter(field, op, value, negated, modifier)


def parse_in_list(value: str) -> list[str]:
    inner = value[1:-1]
    if not inner.strip():
        return []
    return [_unquote(item.strip()) if item.strip().startswith('"') else item
            for item in split_top(inner)]


def parse_logic(key: str, raw: str) -> Logic:
    """`or=(a.eq.1,and(b.gt.2,c.is.null))`, `not.and=(...)`."""
    negated = raw.startswith("not.")
    if key.startswith("not."):
        negated, key = True, key[4:]
    body = raw[4:] if raw.startswith("not.") else raw
    if not (body.startswith("(") and body.endswith(")")):
        raise parse_error(f'"failed to parse logic tree ({raw})" (line 1, column 1)')
    return Logic(key, _parse_tree_items(body[1:-1], raw), negated)


def _parse_tree_items(inner: str, raw: str) -> tuple[Filter | Logic, ...]:
    items: list[Filter | Logic] = []
    for raw_item in split_top(inner):
        item = raw_item.strip()
        negated = item.startswith("not.")
        bare = item[4:] if negated else item
        for logic_op in ("and", "or"):
            if bare.startswith(logic_op + "(") and bare.endswith(")"):
                items.append(Logic(logic_op, _parse_tree_items(bare[len(logic_op) + 1:-1], raw),
                                   negated))
                break
        else:
            field_text, dot, rest = item.partition(".")
            if not dot:
                raise parse_error(f'"failed to parse logic tree ({raw})" (line 1, column 1)')
            items.append(parse_operation(parse_field(field_text), rest, in_tree=True))
    if not items:
        raise parse_error(f'"failed to parse logic tree ({raw})" (line 1, column 1)')
    return tuple(items)


_CAST_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*(\[\])?")


def parse_select(text: str | None) -> list[Selection]:
    if text is None or not text.strip():
        return [SelectItem(None)]
    return _parse_items(text, text)


def _parse_items(text: str, whole: str) -> list[Selection]:
    items: list[Selection] = []
    for raw in split_top(text):
        part = raw.strip()
        if not part:
            continue
        if part.endswith(")") and "(" in part:
            items.append(_parse_embed(part, whole))
            continue
        if _AGGREGATE_RE.search(part):
            raise pgrst(400, "PGRST123", "Use of aggregate functions is not allowed")
        if "(" in part or part.startswith("..."):
            raise parse_error(f'"failed to parse select parameter ({whole})"')
        if part == "*":
            items.append(SelectItem(None))
            continue
        alias: str | None = None
        head, colon, tail = part.partition(":")
        if colon and not tail.startswith(":"):
            alias, part = _unquote(head.strip()), tail
        cast: str | None = None
        if "::" in part:
            part, cast = part.split("::", 1)
            if not _CAST_RE.fullmatch(cast.strip()):
                raise parse_error(f'"failed to parse select parameter ({whole})"')
            cast = cast.strip()
        items.append(SelectItem(parse_field(part), alias, cast))
    return items


def _parse_embed(part: str, whole: str) -> Embed:
    opening = part.index("(")
    head, inner = part[:opening].strip(), part[opening + 1:-1]
    if _AGGREGATE_RE.fullmatch(part) or not head:
        raise pgrst(400, "PGRST123", "Use of aggregate functions is not allowed")
    spread = head.startswith("...")
    if spread:
        head = head[3:]
    alias: str | None = None
    if ":" in head:
        alias_text, _, head = head.partition(":")
        alias = _unquote(alias_text.strip())
    name, *modifiers = [m.strip() for m in head.split("!")]
    hint: str | None = None
    join: str | None = None
    for modifier in modifiers:
        if modifier in ("inner", "left"):
            join = modifier
        elif hint is None and modifier:
            hint = _unquote(modifier)
        else:
            raise parse_error(f'"failed to parse select parameter ({whole})"')
    if not name or (spread and alias):
        raise parse_error(f'"failed to parse select parameter ({whole})"')
    return Embed(_unquote(name), tuple(_parse_items(inner, whole)), alias, hint, join, spread)


def parse_order(text: str) -> list[OrderTerm]:
    terms: list[OrderTerm] = []
    for raw in split_top(text):
        relation: str | None = None
        head = raw.strip()
        related = _RELATED_ORDER_RE.match(head)
        if related:
            relation, head = related.group(1), related.group(2) + related.group(3)
        pieces = head.split(".")
        field = parse_field(pieces[0])
        descending, nulls = False, None
        for modifier in pieces[1:]:
            if modifier in ("asc", "desc"):
                descending = modifier == "desc"
            elif modifier in ("nullsfirst", "nullslast"):
                nulls = modifier[5:]
            else:
                raise parse_error(f'"failed to parse order ({text})" (line 1, column 1)',
                                  'unexpected "' + modifier + '" expecting "asc", "desc", '
                                  '"nullsfirst" or "nullslast"')
        terms.append(OrderTerm(field, descending, nulls, relation))
    return terms


def parse_columns(text: str) -> list[str]:
    return [_unquote(c.strip()) for c in split_top(text) if c.strip()]


def not_implemented(what: str) -> ApiError:
    return pgrst(400, "PGRST127", "Feature not implemented", what)
