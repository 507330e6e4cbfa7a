"""Request-level parsing shared by every action: Prefer, Accept, query parameters, ranges."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from devstack.gateway.errors import ApiError, parse_error, pgrst
from devstack.gateway.grammar import (
    Filter,
    Logic,
    OrderTerm,
    parse_field,
    parse_logic,
    parse_operation,
    parse_order,
)

OBJECT_MEDIA = ("application/vnd.pgrst.object+json", "application/vnd.pgrst.object")
_JSON_MEDIA = ("application/json", "*/*", "application/*")
_RANGE_RE = re.compile(r"^\s*(?:items=)?\s*(\d+)-(\d*)\s*$")
_PREFS = {
    "return": ("minimal", "headers-only", "representation"),
    "count": ("exact", "planned", "estimated"),
    "resolution": ("merge-duplicates", "ignore-duplicates"),
    "missing": ("default", "null"),
    "handling": ("strict", "lenient"),
    "tx": ("commit", "rollback"),
}


@dataclass
class Prefer:
    values: dict[str, str] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, header: str | None) -> Prefer:
        prefer = cls()
        for raw_token in (header or "").split(","):
            token = raw_token.strip()
            if not token:
                continue
            key, _, value = token.partition("=")
            key, value = key.strip(), value.strip()
            allowed = _PREFS.get(key)
            if (allowed and value in allowed) or (key == "max-affected" and value.isdigit()) \
                    or key == "timezone":
                prefer.values[key] = value
            else:
                prefer.invalid.append(token)
        if prefer.values.get("handling") == "strict" and prefer.invalid:
            raise pgrst(400, "PGRST122", "Invalid preferences given with handling=strict",
                        "Invalid preferences: " + ", ".join(prefer.invalid))
        return prefer

    def get(self, key: str) -> str | None:
        return self.values.get(key)


_ARRAY_MEDIA = "application/vnd.pgrst.array+json"


def negotiate(accept: str | None) -> tuple[bool, str]:
    """(singular, variant) of the first media type of Accept we can produce, variant being
    json, csv or stripped (`nulls=stripped`); 406 PGRST107 when there is none."""
    if not accept:
        return False, "json"
    for part in accept.split(","):
        media, *params = [p.strip().lower() for p in part.split(";")]
        stripped = "nulls=stripped" in [p.replace(" ", "") for p in params]
        if media in OBJECT_MEDIA:
            return True, "stripped" if stripped else "json"
        if media == _ARRAY_MEDIA:
            return False, "stripped" if stripped else "json"
        if media == "text/csv":
            return False, "csv"
        if media in _JSON_MEDIA or not media:
            return False, "json"
    raise pgrst(406, "PGRST107", f"None of these media types are available: {accept}")


@dataclass
class EmbedParams:
    """Filters, order and paging given for one embedded resource (`rel.col=...`,
    `rel.order=...`, `rel.limit=...`), keyed in Query.embedded by its path of labels."""

    filters: list[Filter | Logic] = field(default_factory=list)
    order: list[OrderTerm] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0


_EMBED_RESERVED = ("order", "limit", "offset", "or", "and")


@dataclass
class Query:
    """A parsed query string: reserved parameters plus filters (everything else)."""

    select: str | None = None
    columns: str | None = None
    on_conflict: str | None = None
    order: list[OrderTerm] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    filters: list[Filter | Logic] = field(default_factory=list)
    raw_filters: list[tuple[str, str]] = field(default_factory=list)
    embedded: dict[tuple[str, ...], EmbedParams] = field(default_factory=dict)

    def plain(self) -> bool:
        """No select, filters, order or paging: the result is returned as is."""
        return (self.select is None and not self.order and self.limit is None
                and not self.offset and not self.filters and not self.raw_filters
                and not self.embedded)

    @classmethod
    def parse(cls, params: list[tuple[str, str]], *, defer_filters: bool = False) -> Query:
        q = cls()
        for key, value in params:
            if key == "select":
                q.select = value
            elif key == "columns":
                q.columns = value
            elif key == "on_conflict":
                q.on_conflict = value
            elif key == "order":
                q.order.extend(parse_order(value))
            elif key == "limit":
                if value.lstrip("-").isdigit():
                    q.limit = int(value)
            elif key == "offset":
                if value.isdigit():
                    q.offset = int(value)
            elif key in ("or", "and", "not.or", "not.and"):
                q.filters.append(parse_logic(key, value))
            elif "." in key.split("->")[0] and not key.startswith('"'):
                q._embedded_param(key, value)
            elif defer_filters:
                q.raw_filters.append((key, value))
            else:
                q.filters.append(parse_operation(parse_field(key), value))
        if (q.limit is not None and q.limit < 0) or (q.embedded and any(
                p.limit is not None and p.limit < 0 for p in q.embedded.values())):
            raise pgrst(416, "PGRST103", "Requested range not satisfiable",
                        "Limit should be greater than or equal to zero.")
        return q

    def _embedded_param(self, key: str, value: str) -> None:
        head = key.split("->", maxsplit=1)[0]
        parts = head.split(".")
        last = parts[-1]
        if last in ("or", "and") and len(parts) > 2 and parts[-2] == "not":
            path, reserved = tuple(parts[:-2]), "not." + last
        elif last in _EMBED_RESERVED:
            path, reserved = tuple(parts[:-1]), last
        else:
            path, reserved = tuple(parts[:-1]), None
        params = self.embedded.setdefault(path, EmbedParams())
        if reserved is None:
            field_text = key[len(".".join(path)) + 1:]
            params.filters.append(parse_operation(parse_field(field_text), value))
        elif reserved == "order":
            params.order.extend(parse_order(value))
        elif reserved == "limit":
            if value.lstrip("-").isdigit():
                params.limit = int(value)
        elif reserved == "offset":
            if value.isdigit():
                params.offset = int(value)
        else:
            params.filters.append(parse_logic(reserved, value))

    def reject_embedded(self) -> None:
        """PGRST108 for `rel.x=...` parameters when nothing is embedded."""
        for path in self.embedded:
            raise not_embedded(".".join(path))


def not_embedded(resource: str) -> ApiError:
    return pgrst(400, "PGRST108", f"'{resource}' is not an embedded resource in this request",
                 None, f"Verify that '{resource}' is included in the 'select' query parameter.")


def page_bounds(query: Query, range_header: str | None, max_rows: int | None
                ) -> tuple[int, int | None]:
    """(offset, limit) from limit/offset, the Range header (GET only) and db-max-rows."""
    lower = query.offset
    upper: int | None = None if query.limit is None else lower + query.limit - 1
    if range_header:
        match = _RANGE_RE.match(range_header)
        if match is None:
            raise parse_error("Invalid Range header", range_header)
        r_lower = int(match.group(1))
        r_upper = int(match.group(2)) if match.group(2) else None
        if r_upper is not None and r_upper < r_lower:
            raise pgrst(416, "PGRST103", "Requested range not satisfiable")
        lower = max(lower, r_lower)
        if r_upper is not None:
            upper = r_upper if upper is None else min(upper, r_upper)
    if max_rows is not None:
        cap = lower + max_rows - 1
        upper = cap if upper is None else min(upper, cap)
    limit = None if upper is None else max(upper - lower + 1, 0)
    return lower, limit


def content_range(lower: int, n: int, total: int | None) -> str:
    upper = lower + n - 1
    shown = f"{lower}-{upper}" if total != 0 and lower <= upper else "*"
    return f"{shown}/{'*' if total is None else total}"


def range_status(lower: int, n: int, total: int | None) -> int:
    if total is None:
        return 200
    if lower > total:
        return 416
    if n < total:
        return 206
    return 200


def offset_error(lower: int, total: int) -> ApiError:
    err = pgrst(416, "PGRST103", "Requested range not satisfiable",
                f"An offset of {lower} was requested, but there are only {total} rows.")
    err.headers["Content-Range"] = f"*/{total}"
    return err
