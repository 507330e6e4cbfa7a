"""`create_app(settings)`: the Stripe stand-in as a Starlette app (API at `/v1`, controls at
`/_standin`). State lives in memory; webhook deliveries run on the server's event loop."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount, Route

from devstack.stripe_standin import (
    api,
    authentication,
    control,
    promptpay,
    refunds,
    setup_intents,
)
from devstack.stripe_standin.delivery import Dispatcher, wait_quiet
from devstack.stripe_standin.disputes import REASONS, close_dispute, open_dispute
from devstack.stripe_standin.settings import StripeStandinSettings
from devstack.stripe_standin.state import AUTOMATIC, StandinState


class Standin:
    """The account behind the app; tests in the same process may drive it directly."""

    def __init__(self, settings: StripeStandinSettings) -> None:
        self.settings = settings
        self.state = StandinState(settings.api_version)
        self.dispatcher = Dispatcher(settings, self.render_event)
        self.state.sink = self.dispatcher

    def render_event(self, event_id: str) -> bytes | None:
        # Stripe sends events pretty-printed; the signature covers these exact bytes.
        with self.state.lock:
            event = self.state.events.get(event_id)
            return None if event is None else json.dumps(event, indent=2).encode()

    def event_log(self, type_: str | None = None) -> list[dict[str, Any]]:
        """Events oldest first, each with its delivery attempts."""
        with self.state.lock:
            events = [e for e in self.state.events.values() if type_ in (None, e["type"])]
            summaries = [{"id": e["id"], "type": e["type"], "created": e["created"],
                          "object_id": e["data"]["object"].get("id"), "request": e["request"]}
                         for e in events]
        for summary in summaries:
            summary["delivered"] = self.dispatcher.delivered(summary["id"])
            summary["attempts"] = self.dispatcher.attempts(summary["id"])
        return summaries

    def open_dispute(self, charge_id: str, reason: str = "fraudulent",
                     amount: int | None = None) -> dict[str, Any]:
        if reason not in REASONS:
            raise ValueError(f"unknown dispute reason {reason!r}")
        with self.state.lock:
            ch = self.state.get("charges", charge_id, "charge")
            return dict(open_dispute(self.state, ch, amount or ch["amount"], reason))

    def close_dispute(self, dispute_id: str, status: str) -> dict[str, Any]:
        if status not in ("lost", "won"):
            raise ValueError("a dispute closes as 'lost' or 'won'")
        with self.state.lock:
            dp = self.state.get("disputes", dispute_id, "dispute")
            return dict(close_dispute(self.state, dp, status, AUTOMATIC))

    def authenticate(self, intent_id: str, outcome: str) -> dict[str, Any]:
        """The customer completes (`complete`) or fails (`fail`) the 3-D Secure challenge of a
        PaymentIntent (`pi_...`) or a SetupIntent (`seti_...`)."""
        if outcome not in ("complete", "fail"):
            raise ValueError("a challenge is 'complete' or 'fail'")
        with self.state.lock:
            if intent_id.startswith("seti_"):
                seti = self.state.get("setup_intents", intent_id, "intent")
                return dict(setup_intents.finish_authentication(self.state, seti, outcome,
                                                                AUTOMATIC))
            pi = self.state.get("payment_intents", intent_id, "intent")
            return dict(authentication.finish(self.state, pi, outcome, AUTOMATIC))

    def settle_promptpay(self, payment_intent_id: str, outcome: str) -> dict[str, Any]:
        """The customer pays the PromptPay QR code (`pay`), or it expires (`expire`)."""
        if outcome not in ("pay", "expire"):
            raise ValueError("a PromptPay code is 'pay' or 'expire'")
        with self.state.lock:
            pi = self.state.get("payment_intents", payment_intent_id, "intent")
            return dict(promptpay.settle(self.state, pi, outcome, AUTOMATIC))

    def move_refund(self, refund_id: str, status: str) -> dict[str, Any]:
        """Move a refund to `status` (pending, succeeded, failed, canceled) with its events."""
        with self.state.lock:
            re = self.state.get("refunds", refund_id, "refund")
            return dict(refunds.move(self.state, re, status, AUTOMATIC))

    def set_refund_start(self, status: str | None) -> None:
        """The status new refunds start in (None: Stripe's default for the payment method)."""
        if status not in (None, *refunds.STARTS):
            raise ValueError(f"a refund starts as one of {', '.join(refunds.STARTS)}")
        with self.state.lock:
            self.state.refund_start = status

    def wait_quiet(self, timeout: float = 10.0) -> bool:
        return wait_quiet(self.dispatcher, timeout)


def create_app(settings: StripeStandinSettings) -> Starlette:
    standin = Standin(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await standin.dispatcher.start()
        try:
            yield
        finally:
            await standin.dispatcher.stop()

    app = Starlette(routes=[
        Mount("/_standin", routes=control.routes()),
        Route("/{path:path}", api.handle, methods=["GET", "POST", "DELETE"]),
    ], lifespan=lifespan)
    app.state.standin = standin
    return app
