"""Decode Stripe's form encoding (`a[b][0]=x`) into nested values, and read typed parameters.

stripe-python sends v1 parameters form-encoded (POST body, or the query string of GET/DELETE)
with bracketed keys, indexed arrays (`expand[0]=...`) and booleans as `true`/`false`. Stripe
also accepts the older `key[]=` array form, so both are decoded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from devstack.stripe_standin.errors import StripeError, bad_value, missing_param, unknown_param

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
# Metadata keys are user data: `metadata[0]=x` stays a mapping, never becomes a list.
_FREE_FORM = {"metadata"}


def _split(key: str) -> list[str]:
    match = _KEY.match(key)
    if not match:
        return [key]
    return [match.group(1), *_PART.findall(match.group(2))]


def _listify(value: Any, name: str = "") -> Any:
    if not isinstance(value, dict):
        return value
    items = {k: _listify(v, k) for k, v in value.items()}
    if name not in _FREE_FORM and items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def decode(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = _split(key)
        node = root
        for index, part in enumerate(parts):
            name = part if part != "" else str(len(node))
            if index == len(parts) - 1:
                node[name] = value
                break
            child = node.get(name)
            if not isinstance(child, dict):
                child = node[name] = {}
            node = child
    return {k: _listify(v, k) for k, v in root.items()}


def check_allowed(params: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed_set = set(allowed) | {"expand"}
    for name in params:
        if name not in allowed_set:
            raise unknown_param(name)


def text(params: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing_param(name)
        return None
    if not isinstance(value, str):
        raise bad_value(name, f"Invalid string: {value!r}")
    return value


def integer(params: Mapping[str, Any], name: str, *, required: bool = False) -> int | None:
    raw = text(params, name, required=required)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise StripeError(400, "invalid_request_error", f"Invalid integer: {raw}", param=name,
                          code="parameter_invalid_integer") from None


def boolean(params: Mapping[str, Any], name: str, default: bool = False) -> bool:
    raw = text(params, name)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        raise StripeError(400, "invalid_request_error", f"Invalid boolean: {raw}", param=name,
                          code="parameter_invalid_boolean")
    return raw == "true"


def choice(params: Mapping[str, Any], name: str, options: Iterable[str],
           default: str | None = None) -> str | None:
    raw = text(params, name)
    if raw is None:
        return default
    allowed = list(options)
    if raw not in allowed:
        raise bad_value(name, f"Invalid {name}: must be one of {', '.join(allowed)}")
    return raw


def mapping(params: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise bad_value(name, f"Invalid object: {name}")
    return value


def string_list(params: Mapping[str, Any], name: str) -> list[str] | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_value(name, f"Invalid array: {name}")
    return value


def merge_metadata(current: dict[str, str], params: Mapping[str, Any]) -> dict[str, str]:
    """Stripe merges metadata keys; an empty string unsets a key and `metadata=""` clears all."""
    if "metadata" not in params:
        return dict(current)
    raw = params["metadata"]
    if raw == "":
        return {}
    if not isinstance(raw, dict):
        raise bad_value("metadata", "Invalid object: metadata")
    merged = dict(current)
    for key, value in raw.items():
        if not isinstance(value, str):
            raise bad_value(f"metadata[{key}]", "Metadata values must be strings")
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def matching(items: Iterable[dict[str, Any]], params: Mapping[str, Any],
             *fields: str) -> list[dict[str, Any]]:
    """A list endpoint's filters: the items whose `field` equals that parameter, where given."""
    wanted = {name: value for name in fields if (value := text(params, name)) is not None}
    return [item for item in items if all(item[k] == v for k, v in wanted.items())]
