"""The declarative edge: a function's endpoints by method and path, and what each needs.

An `Endpoint` names its method, its path (`/`, `/export`, `/{id}`, or `*` for any), who may
call it, the body model (as "module:Class", imported by the first request that parses it),
whether an Idempotency-Key is optional or required, and its rate-limit scope. `serve` turns a
function's endpoints into its Lambda handler (through `shared.http.adapter`, the one error
mapping), doing for every endpoint, in this order: find the path (404) and the method (405),
verify or authenticate the caller (401), parse the body (422), read the Idempotency-Key (422,
shared/idempotency.py), count the request against the caller's rate limit (429), then call the
endpoint's use case with a `Call`. Use cases never see HTTP.

Importing a handler defines no pydantic model: defining the first model class imports pydantic's
model machinery (about a quarter of a naive `import supabase, stripe, pydantic`), so the body
models, `NoBody` and the use cases are imported when the first request needs them
(`python -m benchmarks.handler_imports`; tests/ops/test_cold_imports.py keeps it so).
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from shared import idempotency
from shared.bootstrap import services
from shared.errors import MethodNotAllowed, NotFound
from shared.http import FunctionUrlRequest, Response, adapter

if TYPE_CHECKING:
    from pydantic import BaseModel

    from shared.access_tokens import AuthenticatedUser

BodyT = TypeVar("BodyT", bound="BaseModel")
# The path of a function with one endpoint: its URL answers on every path below it.
ANY_PATH = "*"
_MODEL_REF = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


@dataclass(frozen=True)
class Call(Generic[BodyT]):
    """What an endpoint's use case is called with."""

    request: FunctionUrlRequest
    body: BodyT
    user: AuthenticatedUser | None = None
    idempotency_key: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def caller(self) -> AuthenticatedUser:
        """The authenticated caller (only on endpoints with `auth`)."""
        assert self.user is not None, "an endpoint without auth has no caller"
        return self.user


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handle: Callable[[Call[Any]], Response]
    # "user": a valid access token of a live account; "user-or-erased": also a deleted one.
    auth: Literal["user", "user-or-erased"] | None = None
    # A check of a caller that is not a user (a signature over the request), made first.
    verify: Callable[[FunctionUrlRequest], None] | None = None
    # The body model: the class, or "module:Class" to import it on the first request.
    body: type[BaseModel] | str | None = None
    allow_empty_body: bool = False
    idempotency: Literal["optional", "required"] | None = None
    rate_limit: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.body, str) and not _MODEL_REF.fullmatch(self.body):
            raise ValueError(f"body {self.body!r} is not a 'module:Class' name")

    def body_model(self) -> type[BaseModel] | None:
        """The body model, imported (once) when named by "module:Class"."""
        return _import_model(self.body) if isinstance(self.body, str) else self.body

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        """The path parameters when `segments` is this endpoint's path, else None."""
        if self.path == ANY_PATH:
            return {}
        pattern = [s for s in self.path.split("/") if s]
        if len(pattern) != len(segments):
            return None
        params: dict[str, str] = {}
        for expected, actual in zip(pattern, segments, strict=True):
            if expected.startswith("{") and expected.endswith("}"):
                params[expected[1:-1]] = actual
            elif expected != actual:
                return None
        return params


@functools.cache
def _import_model(name: str) -> type[BaseModel]:
    from pydantic import BaseModel

    module, _, attribute = name.partition(":")
    model = getattr(importlib.import_module(module), attribute)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{name} is not a pydantic model")
    return model


def _dispatch(endpoints: Sequence[Endpoint], request: FunctionUrlRequest) -> Response:
    segments = [s for s in request.raw_path.split("/") if s]
    # The first path that matches decides (a literal path before a parameter of the same shape);
    # then the method: a known path with another method is a 405.
    matched = next(((e, p) for e in endpoints if (p := e.match(segments)) is not None), None)
    if matched is None:
        raise NotFound()
    path = matched[0].path
    endpoint = next((e for e in endpoints if e.path == path and e.method == request.method), None)
    if endpoint is None:
        raise MethodNotAllowed()
    if endpoint.verify is not None:
        endpoint.verify(request)
    user = None
    if endpoint.auth is not None:
        from shared.access_tokens import authenticate

        user = authenticate(request, allow_erased=endpoint.auth == "user-or-erased")
    model = endpoint.body_model()
    if model is None:
        from shared.request_model import NoBody

        body: BaseModel = NoBody()
    else:
        body = request.json_body(model, allow_empty=endpoint.allow_empty_body)
    key = None
    if endpoint.idempotency == "required":
        key = idempotency.required_key(request.header("idempotency-key"))
    elif endpoint.idempotency == "optional":
        key = idempotency.optional_key(request.header("idempotency-key"))
    if endpoint.rate_limit is not None:
        assert user is not None, "a rate limit counts per caller: the endpoint needs auth"
        limiter = services().rate_limiter
        if limiter is not None:
            limiter.hit(endpoint.rate_limit, str(user.user_id))
    return endpoint.handle(Call(request=request, body=body, user=user, idempotency_key=key,
                                params=matched[1]))


# The endpoints of every function served in this process, by function name (for checks of
# what they declare, such as the body models they name).
SERVED: dict[str, tuple[Endpoint, ...]] = {}


def serve(*endpoints: Endpoint, function: str) -> Callable[[Mapping[str, Any], Any], Response]:
    """The Lambda handler of a function's endpoints, built once per container."""
    SERVED[function] = endpoints
    return adapter(lambda request: _dispatch(endpoints, request), function=function)
