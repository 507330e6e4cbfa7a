"""HTTP surface of the stand-in: QStash's v2 REST API plus a local-only delivery report.

QStash's own routes: POST /v2/publish/<url>, POST /v2/schedules/<url> (Upstash-Cron),
GET /v2/schedules, GET|DELETE /v2/schedules/<id>, PATCH /v2/schedules/<id>/pause|resume,
GET|DELETE /v2/messages/<id>, GET /v2/keys, POST /v2/keys/rotate; all with the bearer token.
Local only: GET /local/messages (every message, its state, its attempts and whether another
attempt is queued; filters scheduleId, url, state) and GET /healthz.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.qstash_standin.cron import CronError, parse_cron
from devstack.qstash_standin.engine import QStashEngine
from devstack.qstash_standin.model import MessageSpec, SpecError
from devstack.qstash_standin.settings import QStashStandinSettings

Handler = Callable[[Request], Awaitable[Response]]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _engine(request: Request) -> QStashEngine:
    engine: QStashEngine = request.app.state.engine
    return engine


def _authorized(handler: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        expected = f"Bearer {_engine(request).settings.token.get_secret_value()}"
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return _error(401, "Unauthorized")
        return await handler(request)
    return wrapped


async def _spec(request: Request) -> MessageSpec:
    engine = _engine(request)
    body = await request.body()
    if len(body) > engine.settings.max_body_bytes:
        raise SpecError("message body too large")
    destination = request.path_params["destination"]
    # The client puts the destination in the path, so its query string lands in ours.
    if request.url.query:
        destination = f"{destination}?{request.url.query}"
    return MessageSpec.from_headers(destination, body, request.headers,
                                    default_retries=engine.settings.default_retries)


def _caller_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@_authorized
async def publish(request: Request) -> Response:
    try:
        spec = await _spec(request)
    except SpecError as exc:
        return _error(400, str(exc))
    message, duplicate = _engine(request).publish(spec, caller_ip=_caller_ip(request))
    if duplicate:
        return JSONResponse({"messageId": message.message_id, "deduplicated": True},
                            status_code=202)
    return JSONResponse({"messageId": message.message_id}, status_code=201)


@_authorized
async def create_schedule(request: Request) -> Response:
    cron = request.headers.get("upstash-cron")
    if not cron:
        return _error(400, "Upstash-Cron header is required")
    try:
        # Deduplication applies to creating the schedule, not to the messages it sends.
        spec = dataclasses.replace(await _spec(request), deduplication_id=None)
        cron_schedule = parse_cron(cron)
    except (SpecError, CronError) as exc:
        return _error(400, str(exc))
    schedule = _engine(request).create_schedule(
        spec, cron, cron_schedule, schedule_id=request.headers.get("upstash-schedule-id"),
        caller_ip=_caller_ip(request))
    return JSONResponse({"scheduleId": schedule.schedule_id})


@_authorized
async def list_schedules(request: Request) -> Response:
    return JSONResponse([s.to_json() for s in _engine(request).schedules.values()])


@_authorized
async def get_schedule(request: Request) -> Response:
    schedule = _engine(request).schedules.get(request.path_params["schedule_id"])
    if schedule is None:
        return _error(404, "schedule not found")
    return JSONResponse(schedule.to_json())


@_authorized
async def delete_schedule(request: Request) -> Response:
    if not _engine(request).delete_schedule(request.path_params["schedule_id"]):
        return _error(404, "schedule not found")
    return Response(status_code=200)


def _pause_route(paused: bool) -> Handler:
    @_authorized
    async def handler(request: Request) -> Response:
        if not _engine(request).set_paused(request.path_params["schedule_id"], paused):
            return _error(404, "schedule not found")
        return Response(status_code=200)
    return handler


@_authorized
async def get_message(request: Request) -> Response:
    message = _engine(request).messages.get(request.path_params["message_id"])
    # QStash forgets a message once it is delivered or has failed for good.
    if message is None or message.finished:
        return _error(404, "message not found")
    return JSONResponse(message.to_json())


@_authorized
async def cancel_message(request: Request) -> Response:
    if not _engine(request).cancel(request.path_params["message_id"]):
        return _error(404, "message not found")
    return Response(status_code=202)


def _keys(engine: QStashEngine) -> JSONResponse:
    return JSONResponse({"current": engine.current_signing_key, "next": engine.next_signing_key})


@_authorized
async def get_keys(request: Request) -> Response:
    return _keys(_engine(request))


@_authorized
async def rotate_keys(request: Request) -> Response:
    engine = _engine(request)
    engine.rotate_keys()
    return _keys(engine)


@_authorized
async def local_messages(request: Request) -> Response:
    filters = {
        "scheduleId": request.query_params.get("scheduleId"),
        "url": request.query_params.get("url"),
        "state": request.query_params.get("state"),
    }
    engine = _engine(request)
    queued = engine.queued()
    # `queued`: another attempt is still to come, so a test can prove that none will.
    reports = [{**m.report(), "queued": m.message_id in queued} for m in engine.messages.values()]
    selected = [r for r in reports
                if all(value is None or r.get(key) == value for key, value in filters.items())]
    return JSONResponse({"messages": selected})


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True})


def create_app(settings: QStashStandinSettings | None = None) -> Starlette:
    """The stand-in as an ASGI app; deliveries and schedules run during its lifespan."""
    engine = QStashEngine(settings or QStashStandinSettings())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v2/publish/{destination:path}", publish, methods=["POST"]),
        Route("/v2/schedules", list_schedules, methods=["GET"]),
        Route("/v2/schedules/{schedule_id}/pause", _pause_route(True), methods=["PATCH", "POST"]),
        Route("/v2/schedules/{schedule_id}/resume", _pause_route(False),
              methods=["PATCH", "POST"]),
        Route("/v2/schedules/{schedule_id}", get_schedule, methods=["GET"]),
        Route("/v2/schedules/{schedule_id}", delete_schedule, methods=["DELETE"]),
        Route("/v2/schedules/{destination:path}", create_schedule, methods=["POST"]),
        Route("/v2/messages/{message_id}", get_message, methods=["GET"]),
        Route("/v2/messages/{message_id}", cancel_message, methods=["DELETE"]),
        Route("/v2/keys", get_keys, methods=["GET"]),
        Route("/v2/keys/rotate", rotate_keys, methods=["POST"]),
        Route("/local/messages", local_messages, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.engine = engine
    return app
