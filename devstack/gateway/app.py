"""ASGI application: the gateway mounted at /rest/v1, pool opened and closed with the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from devstack.gateway.handler import Gateway
from devstack.gateway.settings import GatewaySettings


class RestApp:
    """A bare ASGI callable (no per-request framework objects: this path is benchmarked)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("utf-8", "replace")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        response = await self.gateway.handle(
            scope["method"], path or "/", scope.get("query_string", b"").decode("latin-1"),
            headers, b"".join(chunks))
        raw_headers = response.raw_headers()
        if response.status not in (204, 304):
            raw_headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status,
                    "headers": raw_headers})
        await send({"type": "http.response.body", "body": response.body})


class GatewayApp(Starlette):
    """Starlette (lifespan, other routes) with a direct hand-off of /rest/v1 requests, which
    skips the generic middleware and routing layers on the hot path."""

    rest: RestApp
    prefix = "/rest/v1/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            await self.rest({**scope, "root_path": self.prefix[:-1]}, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: GatewaySettings) -> Starlette:
    gateway = Gateway(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    rest = RestApp(gateway)
    app = GatewayApp(routes=[Mount("/rest/v1", app=rest)], lifespan=lifespan)
    app.rest = rest
    app.state.gateway = gateway
    return app
