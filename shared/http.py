"""Lambda function URL events (payload 2.0) in, function URL responses out.

`FunctionUrlRequest.from_event` turns the event into a typed request; `json_response` and
`error_response` build the response dictionaries; `adapter` wraps a route so that every
`AppError` becomes the error JSON of docs/API.md with the request id, its message in the language
the request's Accept-Language prefers (English or Thai), and anything else a 500 without a stack
trace.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from shared import observability
from shared.errors import AppError, InvalidJson, PayloadTooLarge, ValidationFailed

if TYPE_CHECKING:
    from pydantic import BaseModel

logger = logging.getLogger("mimivibe")

MAX_BODY_BYTES = 64 * 1024
ModelT = TypeVar("ModelT", bound="BaseModel")
Response = dict[str, Any]


def _deadline(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return time.monotonic() + remaining() / 1000 if callable(remaining) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionUrlRequest:
    """The Lambda event, as `from_event` builds it (every field already converted, so a plain
    dataclass rather than a model: nothing left to validate, nothing to build at cold start)."""

    method: str
    raw_path: str = "/"
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)
    body: bytes = b""
    request_id: str
    source_ip: str | None = None
    # time.monotonic() by which the invocation must answer (the Lambda context's time left).
    deadline: float | None = None

    @classmethod
    def from_event(cls, event: Mapping[str, Any], context: Any = None) -> FunctionUrlRequest:
        http = (event.get("requestContext") or {}).get("http") or {}
        request_id = (
            (event.get("requestContext") or {}).get("requestId")
            or getattr(context, "aws_request_id", None)
            or str(uuid.uuid4())
        )
        raw_body = event.get("body") or ""
        # Refused before decoding: base64 takes 4 characters for 3 bytes.
        if len(raw_body) > (MAX_BODY_BYTES + 2) // 3 * 4 + 4:
            raise PayloadTooLarge(details={"max_bytes": MAX_BODY_BYTES})
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw_body, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InvalidJson("The request body is not valid base64.") from exc
        else:
            body = raw_body.encode("utf-8") if isinstance(raw_body, str) else bytes(raw_body)
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(details={"max_bytes": MAX_BODY_BYTES})
        return cls(
            method=str(http.get("method") or "GET").upper(),
            raw_path=event.get("rawPath") or "/",
            query={k: str(v) for k, v in (event.get("queryStringParameters") or {}).items()},
            headers={str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()},
            cookies=list(event.get("cookies") or []),
            body=body,
            request_id=str(request_id),
            source_ip=http.get("sourceIp"),
            deadline=_deadline(context),
        )

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def bearer_token(self) -> str | None:
        value = self.header("authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    def json_body(self, model: type[ModelT], *, allow_empty: bool = False) -> ModelT:
        """Parse the body with `model`; malformed JSON or fields → 422 `validation_error`."""
        # pydantic is imported with the first body, not with the handler (shared/edge.py).
        from pydantic import ValidationError as PydanticValidationError

        if not self.body.strip():
            if allow_empty:
                return model()
            raise ValidationFailed("A JSON body is required.")
        try:
            data = json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidJson() from exc
        except ValueError as exc:
            # An integer beyond Python's digit limit (4,300 digits) is no number we accept.
            raise ValidationFailed("The request body holds a number that is too long.") from exc
        if not isinstance(data, dict):
            raise ValidationFailed("The request body must be a JSON object.")
        try:
            return model.model_validate(data)
        except PydanticValidationError as exc:
            errors = [
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
            raise ValidationFailed(details={"errors": errors}) from exc


def json_response(
    status: int, body: Any = None, headers: Mapping[str, str] | None = None
) -> Response:
    out_headers = {"content-type": "application/json; charset=utf-8"}
    out_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    if body is None:
        out_headers.pop("content-type")
        return {"statusCode": status, "headers": out_headers, "body": "", "isBase64Encoded": False}
    # Imported here, not with the handler: by the first response a model or the settings have
    # imported it anyway.
    from pydantic import BaseModel

    payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return {
        "statusCode": status,
        "headers": out_headers,
        "body": json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str),
        "isBase64Encoded": False,
    }


# The languages error messages are written in; the first is the default.
LANGUAGES = ("en", "th")


def preferred_language(accept_language: str | None) -> str:
    """The language of `LANGUAGES` an Accept-Language header prefers (RFC 9110 12.5.4).

    Each range carries a weight (`q`, default 1; `q=0` means "not this one"); a range matches a
    language when it equals it or is a sub-tag of it (`th-TH` asks for `th`), and `*` matches any
    language not named. The heaviest match wins, then the earlier range, then English; no
    match, English.
    The standard library has no parser for this header, and the web frameworks' parsers either
    cost a cold start tens of milliseconds to import or pick an exact lower-weight match over a
    regional higher-weight one.
    """
    weights: dict[str, tuple[float, int]] = {}
    wildcard: tuple[float, int] | None = None
    for position, item in enumerate((accept_language or "").split(",")):
        tag, *params = (part.strip() for part in item.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0  # a malformed weight asks for nothing
                if not 0.0 <= weight <= 1.0:
                    weight = 0.0
        primary = tag.lower().split("-")[0]
        if primary == "*":
            wildcard = wildcard or (weight, position)
        elif primary in LANGUAGES and weight > weights.get(primary, (-1.0, 0))[0]:
            weights[primary] = (weight, position)
    if wildcard is not None:
        for language in LANGUAGES:
            weights.setdefault(language, wildcard)
    ranked = [(w, -pos, -LANGUAGES.index(lang), lang)
              for lang, (w, pos) in weights.items() if w > 0]
    return max(ranked)[3] if ranked else LANGUAGES[0]


def error_response(error: AppError, request_id: str, language: str = LANGUAGES[0]) -> Response:
    """docs/API.md's error JSON; `message` in `language`, `code` the same in every language."""
    body = {
        "error": {"code": error.code, "message": error.message_for(language),
                  "details": error.details},
        "request_id": request_id,
    }
    headers = {**error.headers, "x-request-id": request_id, "content-language": language,
               "vary": "Accept-Language"}
    return json_response(error.status, body, headers)


def _accept_language(event: Mapping[str, Any]) -> str | None:
    """The Accept-Language of the raw event (also when the event could not be parsed)."""
    for name, value in (event.get("headers") or {}).items():
        if str(name).lower() == "accept-language":
            return str(value)
    return None


Route = Callable[[FunctionUrlRequest], Response]


def adapter(route: Route, *, function: str) -> Callable[[Mapping[str, Any], Any], Response]:
    """Turn a route into a Lambda handler with the project's one error mapping."""

    def handler(event: Mapping[str, Any], context: Any) -> Response:
        request_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
        with observability.invocation(function, request_id) as invocation:
            request: FunctionUrlRequest | None = None
            try:
                request = FunctionUrlRequest.from_event(event, context)
                request_id = request.request_id
                invocation.bind_request(request_id, request.method, request.raw_path)
                response = route(request)
            except AppError as error:
                if error.status >= 500:
                    logger.error("%s failed: %s", function, error.code, extra={"request_id": request_id})
                response = error_response(error, request_id,
                                          preferred_language(_accept_language(event)))
            except Exception:
                logger.exception("%s crashed", function, extra={"request_id": request_id})
                response = error_response(AppError(), request_id,
                                          preferred_language(_accept_language(event)))
            response.setdefault("headers", {})["x-request-id"] = request_id
            invocation.finish(int(response.get("statusCode", 200)))
            return response

    return handler
