"""The stand-in's hosted PromptPay instructions page and QR images (what
`next_action.promptpay_display_qr_code` links to). Public, as Stripe's are: the app opens them
without an API key."""

from __future__ import annotations

import html
import io
from typing import TYPE_CHECKING

import segno
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from devstack.stripe_standin.promptpay import qr_code

if TYPE_CHECKING:
    from devstack.stripe_standin.app import Standin


def _code(request: Request) -> dict[str, str] | None:
    standin: Standin = request.app.state.standin
    with standin.state.lock:
        pi = standin.state.payment_intents.get(request.path_params["payment_intent_id"])
        return None if pi is None else qr_code(pi)


def _missing() -> Response:
    return JSONResponse({"error": {"message": "No PromptPay QR code is waiting here."}}, 404)


async def instructions(request: Request) -> Response:
    code = _code(request)
    if code is None:
        return _missing()
    svg = io.BytesIO()
    segno.make(code["data"], error="m").save(svg, kind="svg", scale=6, xmldecl=False)
    page = (f"<!doctype html><html lang=\"th\"><meta charset=\"utf-8\"><title>PromptPay</title>"
            f"<body><h1>สแกนเพื่อจ่ายด้วย PromptPay</h1>{svg.getvalue().decode()}"
            f"<p>Scan with any Thai banking app before {int(code['expires_at'])} (unix time)."
            f"</p><p><code>{html.escape(code['data'])}</code></p></body></html>")
    return HTMLResponse(page)


async def image(request: Request) -> Response:
    code = _code(request)
    if code is None:
        return _missing()
    kind = request.path_params["kind"]
    if kind not in ("png", "svg"):
        return _missing()
    out = io.BytesIO()
    segno.make(code["data"], error="m").save(out, kind=kind, scale=6)
    return Response(out.getvalue(), media_type="image/png" if kind == "png" else "image/svg+xml")


def routes() -> list[Route]:
    return [
        Route("/promptpay/{payment_intent_id}", instructions, methods=["GET"]),
        Route("/promptpay/{payment_intent_id}/qr.{kind:str}", image, methods=["GET"]),
    ]
