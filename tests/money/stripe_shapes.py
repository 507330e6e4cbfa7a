"""Checks of Stripe object shapes against Stripe's own definitions, for the stand-in's tests.

Two references, because each sees what the other does not:
- Stripe's published OpenAPI specification (`spec3_<date>.json` from the `stripe/openapi`
  repository, kept beside the project under `shared/reference/stripe/`; `STRIPE_OPENAPI_SPEC`
  names another copy): required fields, nullability, types and enums of every object as of its
  date, validated with jsonschema once OpenAPI 3.0's `nullable` is spelled as JSON Schema's
  `null` type;
- the typed object classes of the installed `stripe` SDK, which is newer: every attribute it
  types as never null (no `Optional`) must be present, recursively through nested objects.
"""

from __future__ import annotations

import functools
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

SPEC_GLOB = "spec3_*.json"


def spec_path() -> Path:
    configured = os.environ.get("STRIPE_OPENAPI_SPEC")
    if configured:
        return Path(configured)
    for parent in Path(__file__).resolve().parents:
        folder = parent / "shared" / "reference" / "stripe"
        found = sorted(folder.glob(SPEC_GLOB)) if folder.is_dir() else []
        if found:
            return found[-1]
    raise FileNotFoundError(
        "Stripe's OpenAPI specification was not found: put spec3_<date>.json under "
        "shared/reference/stripe/ beside the project, or set STRIPE_OPENAPI_SPEC.")


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` as JSON Schema: the schema, or null."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@functools.cache
def _components() -> dict[str, Any]:
    with spec_path().open(encoding="utf-8") as handle:
        return dict(_json_schema(json.load(handle)["components"]))


@functools.cache
def _validator(schema_name: str) -> Any:
    from jsonschema import Draft7Validator

    components = _components()
    if schema_name not in components["schemas"]:
        raise KeyError(f"Stripe's specification has no {schema_name!r} schema")
    return Draft7Validator({"$ref": f"#/components/schemas/{schema_name}",
                            "components": components})


def spec_violations(obj: dict[str, Any], schema_name: str | None = None) -> list[str]:
    """Where `obj` breaks the specification's schema for its `object` type."""
    name = schema_name or str(obj["object"])
    return sorted(f"{name}: {'.'.join(str(p) for p in error.absolute_path) or '<root>'}: "
                  f"{error.message[:200]}"
                  for error in _validator(name).iter_errors(obj))


def _sdk_class(object_type: str) -> type | None:
    from stripe import StripeObject
    from stripe._object_classes import get_object_class

    found = get_object_class("V1", object_type)
    return None if found is StripeObject else found


def _never_null(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return type(None) not in typing.get_args(annotation)
    return True


def _nested(annotation: Any) -> type | None:
    """The StripeObject class inside an annotation (`Foo`, `List[Foo]`, `Optional[Foo]`)."""
    from stripe import StripeObject

    if isinstance(annotation, type) and issubclass(annotation, StripeObject):
        return annotation
    for arg in typing.get_args(annotation):
        found = _nested(arg)
        if found is not None:
            return found
    return None


class _Names(dict[str, Any]):
    """Names an SDK annotation may use: its module's, its class's, then the SDK's (classes a
    module imports only for type checking)."""

    def __missing__(self, key: str) -> Any:
        import stripe

        return getattr(stripe, key)


def _hints(cls: type) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        module = vars(__import__(klass.__module__, fromlist=["_"]))
        names = _Names({**vars(typing), **module,
                        **{k: v for k, v in vars(klass).items() if isinstance(v, type)}})
        for name, raw in vars(klass).get("__annotations__", {}).items():
            if name.startswith("_") or name.isupper():  # private, or a ClassVar constant
                continue
            try:
                # A string annotation, read the way typing.get_type_hints would.
                hints[name] = eval(raw, {}, names) if isinstance(raw, str) else raw
            except Exception:
                # A name the SDK does not export: still required unless typed Optional.
                hints[name] = Any
    return hints


def sdk_violations(obj: Any, cls: type | None = None, path: str = "") -> list[str]:
    """Attributes the SDK types as always present and never null that `obj` lacks."""
    if cls is None:
        cls = _sdk_class(str(obj.get("object")))
        path = str(obj.get("object"))
        if cls is None:
            return [f"{path}: the stripe SDK has no class for this object"]
    if isinstance(obj, list):
        return [v for i, item in enumerate(obj) for v in sdk_violations(item, cls, f"{path}[{i}]")]
    if not isinstance(obj, dict):
        return []
    found: list[str] = []
    for name, annotation in _hints(cls).items():
        if name not in obj:
            if _never_null(annotation):
                found.append(f"{path}.{name}: missing")
            continue
        nested = _nested(annotation)
        value = obj[name]
        if nested is not None and isinstance(value, dict | list) and not (
                isinstance(value, dict) and "object" in value and nested is not cls
                and value.get("object") != getattr(nested, "OBJECT_NAME", None)):
            found += sdk_violations(value, nested, f"{path}.{name}")
    return found
