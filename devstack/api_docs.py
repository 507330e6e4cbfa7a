"""The interactive API reference of the local stack: Swagger UI at /docs over /openapi.json.

Swagger UI's built files come from the `swagger-ui-bundle-v2` wheel (Swagger UI 5, which reads
OpenAPI 3.1) and are served from the function-URL server itself: nothing is loaded from
elsewhere, so the page works offline. The page is ours; only its assets are the package's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

ASSETS = "/docs/assets"
PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>MimiVibe API (local stack)</title>
    <link rel="stylesheet" type="text/css" href="{assets}/swagger-ui.css">
    <link rel="icon" type="image/png" href="{assets}/favicon-32x32.png" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="{assets}/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="{assets}/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="/docs/init.js" charset="UTF-8"></script>
  </body>
</html>
"""
# The document this server serves, with the stack's own URLs in it.
INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
  });
};
"""


def swagger_ui_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


def docs_routes() -> list[Any]:
    """/docs (the page), /docs/init.js and /docs/assets/* (Swagger UI's files)."""
    page = PAGE.format(assets=ASSETS)

    async def docs(request: Request) -> Response:
        return HTMLResponse(page)

    async def init(request: Request) -> Response:
        return Response(INIT, media_type="text/javascript")

    return [
        Route("/docs", docs, methods=["GET"]),
        Route("/docs/init.js", init, methods=["GET"]),
        Mount(ASSETS, app=StaticFiles(directory=swagger_ui_dir()), name="docs-assets"),
    ]
