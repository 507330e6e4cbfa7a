"""Private controls under `/_standin` (same API key as `/v1`): webhook endpoint and secret
rotation, delivery mode (duplicates, delay, hold), release of held events in a chosen order,
resends, the delivery log, dispute outcomes, the customer's side of a 3-D Secure challenge or a
PromptPay QR code, and where refunds start and go. The PromptPay pages (`pages.py`) are public,
as Stripe's hosted ones are."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.stripe_standin import pages
from devstack.stripe_standin.api import check_key
from devstack.stripe_standin.delivery import DeliveryMode
from devstack.stripe_standin.errors import StripeError

if TYPE_CHECKING:
    from devstack.stripe_standin.app import Standin


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookConfig(_Body):
    url: str | None
    secret: str | None = Field(default=None, pattern=r"^whsec_\S+$")


class Rotation(_Body):
    secret: str | None = Field(default=None, pattern=r"^whsec_\S+$")
    expire_previous_after: float = Field(default=86400.0, ge=0.0, le=86400.0)


class Mode(_Body):
    duplicates: int = Field(default=1, ge=1, le=20)
    delay: float = Field(default=0.0, ge=0.0, le=60.0)
    hold: bool = False


class Release(_Body):
    event_ids: list[str] | None = None
    order: Literal["as_created", "reverse", "shuffle"] = "as_created"
    seed: int | None = None


class Resend(_Body):
    times: int = Field(default=1, ge=1, le=20)


class DisputeOpen(_Body):
    reason: str = "fraudulent"
    amount: int | None = Field(default=None, ge=1)


class DisputeClose(_Body):
    status: Literal["lost", "won"]


class Challenge(_Body):
    outcome: Literal["complete", "fail"]


class PromptPayOutcome(_Body):
    outcome: Literal["pay", "expire"]


class RefundMove(_Body):
    status: Literal["pending", "succeeded", "failed", "canceled"]


class RefundStart(_Body):
    status: Literal["requires_action", "pending", "succeeded"] | None = None


class Wait(_Body):
    timeout: float = Field(default=10.0, gt=0.0, le=120.0)


Endpoint = Callable[["Standin", Request, dict[str, Any]], Awaitable[Any]]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status)


def _endpoint(fn: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        standin: Standin = request.app.state.standin
        try:
            check_key(request, standin.settings.api_key.get_secret_value())
            raw = await request.body()
            body = await request.json() if raw.strip() else {}
            result = await fn(standin, request, body if isinstance(body, dict) else {})
        except StripeError as exc:
            return JSONResponse(exc.body(), exc.status)
        except ValidationError as exc:
            return _error(422, str(exc))
        except (KeyError, ValueError) as exc:
            return _error(400, str(exc))
        return JSONResponse(result)

    return run


def _webhook_view(standin: Standin) -> dict[str, Any]:
    return {"url": standin.dispatcher.url,
            "secrets": [{"secret": s.value, "expires_at": s.expires_at}
                        for s in standin.dispatcher.active_secrets()]}


async def get_webhook(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    return _webhook_view(standin)


async def set_webhook(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    config = WebhookConfig.model_validate(body)
    standin.dispatcher.set_endpoint(config.url, config.secret)
    return _webhook_view(standin)


async def rotate(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    rotation = Rotation.model_validate(body)
    new_secret = rotation.secret or "whsec_" + secrets.token_urlsafe(24)
    standin.dispatcher.rotate(new_secret, rotation.expire_previous_after)
    return {"secret": new_secret, **_webhook_view(standin)}


async def get_mode(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    return Mode.model_validate(standin.dispatcher.mode.__dict__).model_dump()


async def set_mode(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    mode = Mode.model_validate(body)
    standin.dispatcher.set_mode(DeliveryMode(**mode.model_dump()))
    return mode.model_dump()


async def list_events(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    return {"data": standin.event_log(request.query_params.get("type"))}


async def held(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    return {"event_ids": standin.dispatcher.held()}


async def release(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    spec = Release.model_validate(body)
    return {"released": standin.dispatcher.release(spec.event_ids, spec.order, spec.seed)}


async def resend(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    event_id = request.path_params["event_id"]
    with standin.state.lock:
        standin.state.get("events", event_id)
    standin.dispatcher.resend(event_id, Resend.model_validate(body).times)
    return {"resent": event_id}


async def dispute(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    spec = DisputeOpen.model_validate(body)
    return standin.open_dispute(request.path_params["charge_id"], spec.reason, spec.amount)


async def close(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    spec = DisputeClose.model_validate(body)
    return standin.close_dispute(request.path_params["dispute_id"], spec.status)


async def authenticate(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    spec = Challenge.model_validate(body)
    return standin.authenticate(request.path_params["intent_id"], spec.outcome)


async def promptpay_outcome(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    spec = PromptPayOutcome.model_validate(body)
    return standin.settle_promptpay(request.path_params["payment_intent_id"], spec.outcome)


async def move_refund(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    spec = RefundMove.model_validate(body)
    return standin.move_refund(request.path_params["refund_id"], spec.status)


async def refund_start(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    spec = RefundStart.model_validate(body)
    standin.set_refund_start(spec.status)
    return spec.model_dump()


async def status(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    return standin.dispatcher.status()


async def wait(standin: Standin, request: Request, body: dict[str, Any]) -> Any:
    """Answer once no delivery is queued, in flight or awaiting a retry (or at the timeout)."""
    deadline = time.monotonic() + Wait.model_validate(body).timeout
    while standin.dispatcher.status()["outstanding"] and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return {"quiet": standin.dispatcher.status()["outstanding"] == 0}


def routes() -> list[Route]:
    table: list[tuple[str, str, Endpoint]] = [
        ("/status", "GET", status),
        ("/wait", "POST", wait),
        ("/webhook", "GET", get_webhook),
        ("/webhook", "POST", set_webhook),
        ("/webhook/rotate", "POST", rotate),
        ("/delivery", "GET", get_mode),
        ("/delivery", "POST", set_mode),
        ("/events", "GET", list_events),
        ("/events/held", "GET", held),
        ("/events/release", "POST", release),
        ("/events/{event_id}/resend", "POST", resend),
        ("/charges/{charge_id}/dispute", "POST", dispute),
        ("/disputes/{dispute_id}/close", "POST", close),
        ("/payment_intents/{intent_id}/authenticate", "POST", authenticate),
        ("/setup_intents/{intent_id}/authenticate", "POST", authenticate),
        ("/payment_intents/{payment_intent_id}/promptpay", "POST", promptpay_outcome),
        ("/refunds/start", "POST", refund_start),
        ("/refunds/{refund_id}", "POST", move_refund),
    ]
    return [Route(path, _endpoint(fn), methods=[method], name=f"{method} {path}")
            for path, method, fn in table] + pages.routes()
