"""Serve the functions of serverless.yml the way Lambda function URLs do (payload format 2.0).

`http://127.0.0.1:3000/<function>[/<sub-path>]` invokes `<function>` with rawPath `/<sub-path>`,
which is what the deployed function URL of that function would see. The event and the mapping
of the handler's result follow AWS: lower-cased headers and query parameters with duplicates
comma-joined, cookies split out of the Cookie header, binary bodies base64-encoded, a result
without `statusCode` served as 200 JSON, a crash or a timeout as 502. Handlers are imported on
their first call (the cold start) and kept; they run in a thread pool so a slow one blocks
nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import importlib
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.api_docs import docs_routes
from devstack.lambda_context import FunctionSpec, LambdaContext, load_functions
from devstack.logs import idle_run

logger = logging.getLogger("devstack.functions")

MAX_REQUEST_BYTES = 6 * 1024 * 1024  # the function URL (synchronous invoke) payload limit
# Bodies AWS passes as text; everything else (also no content type) arrives base64-encoded.
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml")
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
Handler = Callable[[dict[str, Any], LambdaContext], Any]


class _AnyPath(PathConvertor):
    """Starlette's `path` stops at a newline (`.`); a function URL passes any path to its
    function, so /<function>/<anything, %0A included> must reach the handler too."""

    regex = r"[\s\S]*"


register_url_convertor("anypath", _AnyPath())


def _is_text(content_type: str | None) -> bool:
    return bool(content_type) and content_type.strip().lower().startswith(TEXT_TYPES)  # type: ignore[union-attr]


def _joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        out[key] = f"{out[key]},{value}" if key in out else value
    return out


def build_event(request: Request, raw_path: str, body: bytes) -> dict[str, Any]:
    """The payload-2.0 event a function URL would send for this request."""
    client_ip = request.client.host if request.client else "127.0.0.1"
    pairs = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.scope["headers"]]
    # Cookies leave the headers for their own list, one entry per cookie.
    cookies = [
        c.strip() for k, v in pairs if k == "cookie" for c in v.split(";") if c.strip()
    ]
    headers = _joined([(k, v) for k, v in pairs if k != "cookie"])
    headers.setdefault("x-forwarded-for", client_ip)
    headers.setdefault("x-forwarded-proto", request.url.scheme)
    headers.setdefault("x-forwarded-port", str(request.url.port or 80))
    raw_query = request.scope.get("query_string", b"").decode("latin-1")
    now = time.time()
    request_id = str(uuid.uuid4())
    host = headers.get("host", "127.0.0.1")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": host.split(".")[0],
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": request.method,
                "path": raw_path,
                "protocol": f"HTTP/{request.scope.get('http_version', '1.1')}",
                "sourceIp": client_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        event["queryStringParameters"] = _joined(parse_qsl(raw_query, keep_blank_values=True))
    if body:
        text = None
        if _is_text(headers.get("content-type")):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
    return event


class InvalidResponse(ValueError):
    """The handler returned something a function URL cannot turn into HTTP (AWS: 502)."""


def build_response(result: Any) -> Response:
    """Map a handler's return value to HTTP the way function URLs do."""
    if not (isinstance(result, Mapping) and "statusCode" in result):
        # Lambda infers a 200 JSON response whose body is the serialized return value.
        try:
            body = json.dumps(result, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise InvalidResponse("the result is not JSON-serializable") from exc
        return Response(body, 200, media_type="application/json")
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError) as exc:
        raise InvalidResponse("statusCode is not an integer") from exc
    raw_body = result.get("body")
    if raw_body is None:
        content = b""
    elif not isinstance(raw_body, str):
        raise InvalidResponse("body must be a string")
    elif result.get("isBase64Encoded"):
        try:
            content = base64.b64decode(raw_body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidResponse("body is not valid base64") from exc
    else:
        content = raw_body.encode("utf-8")
    response = Response(content, status)
    for name, value in (result.get("headers") or {}).items():
        response.headers[str(name)] = str(value)
    for cookie in result.get("cookies") or []:
        response.headers.append("set-cookie", str(cookie))
    return response


class FunctionHost:
    """Imports each handler on first use (a cold start) under a lock and keeps it warm."""

    def __init__(self, specs: Mapping[str, FunctionSpec]) -> None:
        self.specs = dict(specs)
        self._handlers: dict[str, Handler] = {}
        self._locks = {name: threading.Lock() for name in self.specs}

    def handler(self, name: str) -> tuple[Handler, bool]:
        """(handler, cold): cold is True for the call that imported it."""
        found = self._handlers.get(name)
        if found is not None:
            return found, False
        with self._locks[name]:
            found = self._handlers.get(name)
            if found is not None:
                return found, False
            spec = self.specs[name]
            module = importlib.import_module(spec.module)
            found = getattr(module, spec.attribute)
            self._handlers[name] = found
            return found, True

    def invoke(self, name: str, event: dict[str, Any], context: LambdaContext) -> tuple[Any, bool]:
        handler, cold = self.handler(name)
        return handler(event, context), cold


def create_app(serverless_yml: Path, environment: Mapping[str, str]) -> Starlette:
    """An ASGI app serving every function of `serverless_yml` at /<function-name>[/<path>].

    `environment` is what the functions see: it is set into os.environ now, before any handler
    is imported. The folder of serverless.yml is the import root, as /var/task is in Lambda.
    """
    serverless_yml = Path(serverless_yml).resolve()
    os.environ.update(environment)
    root = str(serverless_yml.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    host = FunctionHost(load_functions(serverless_yml))

    async def index(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"functions": {name: f"{base}/{name}" for name in host.specs}})

    supabase_url = environment.get("SUPABASE_URL")

    async def openapi(request: Request) -> Response:
        # The committed document (python -m ops.openapi), pointed at this server, and its REST
        # paths at this stack's Supabase URL.
        document_path = serverless_yml.parent / "openapi.json"
        if not document_path.exists():
            return JSONResponse({"message": "No openapi.json next to serverless.yml"}, 404)
        document = json.loads(document_path.read_text(encoding="utf-8"))
        document["servers"] = [{"url": str(request.base_url).rstrip("/")}]
        if supabase_url:
            for item in document.get("paths", {}).values():
                if "servers" in item:
                    item["servers"] = [{"url": supabase_url}]
        return JSONResponse(document)

    async def invoke(request: Request) -> Response:
        raw = request.scope.get("raw_path") or request.url.path.encode()
        name, _, rest = raw.decode("latin-1").lstrip("/").partition("/")
        if name not in host.specs:
            return JSONResponse({"message": f"No function named {name!r}"}, 404)
        raw_path = "/" + rest
        body = await request.body()
        if len(body) > MAX_REQUEST_BYTES:
            return JSONResponse({"message": "Request must be smaller than 6 MB"}, 413)
        event = build_event(request, raw_path, body)
        request_id = event["requestContext"]["requestId"]
        spec = host.specs[name]
        context = LambdaContext.for_function(spec, request_id)
        started = time.perf_counter()
        cold = False
        try:
            result, cold = await asyncio.wait_for(
                run_in_threadpool(host.invoke, name, event, context), spec.timeout_seconds
            )
            response = build_response(result)
        except TimeoutError:
            logger.error("%s timed out after %.0f s (request %s)", name, spec.timeout_seconds,
                         request_id)
            response = Response("Internal Server Error", 502, media_type="text/plain")
        except Exception:
            logger.exception("%s failed (request %s)", name, request_id)
            response = Response("Internal Server Error", 502, media_type="text/plain")
        response.headers["x-amzn-requestid"] = request_id
        logger.info(
            "%s %s %s -> %d %.1f ms%s", name, request.method, raw_path, response.status_code,
            (time.perf_counter() - started) * 1000, " (cold start)" if cold else "",
            extra={"idle": idle_run(name, response.status_code, bytes(response.body))},
        )
        return response

    return Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            *docs_routes(),
            Route("/{path:anypath}", invoke, methods=METHODS),
        ]
    )
