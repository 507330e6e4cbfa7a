"""Stripe event payloads for the money tests, shaped like the API's (only the fields we read,
plus a few of the rest), and helpers that sign them the way Stripe does."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from devstack.stripe_standin import signature_header


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def event(type_: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {"id": new_id("evt"), "object": "event", "api_version": "2026-10-28.endive",
            "created": int(time.time()), "data": data, "livemode": False,
            "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
            "type": type_}


def signed(body: dict[str, Any] | bytes, secret: str | list[str],
           timestamp: int | None = None) -> tuple[bytes, str]:
    raw = body if isinstance(body, bytes) else json.dumps(body, indent=2).encode()
    return raw, signature_header(raw, secret, timestamp)


@dataclass
class StripePayment:
    """One payment's Stripe objects, from which its events are made."""

    payment_id: uuid.UUID
    amount: int
    intent_id: str = field(default_factory=lambda: new_id("pi"))
    charge_id: str = field(default_factory=lambda: new_id("ch"))

    def intent(self, status: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"id": self.intent_id, "object": "payment_intent", "amount": self.amount,
                "currency": "thb", "status": status, "latest_charge": self.charge_id,
                "metadata": {"payment_id": str(self.payment_id)},
                "last_payment_error": error}

    def succeeded(self) -> dict[str, Any]:
        return event("payment_intent.succeeded", self.intent("succeeded"))

    def failed(self) -> dict[str, Any]:
        error = {"code": "card_declined", "decline_code": "insufficient_funds",
                 "message": "Your card has insufficient funds."}
        return event("payment_intent.payment_failed",
                      self.intent("requires_payment_method", error))

    def canceled(self) -> dict[str, Any]:
        return event("payment_intent.canceled", self.intent("canceled"))

    def refunded(self, amount_refunded: int) -> dict[str, Any]:
        return event("charge.refunded", {
            "id": self.charge_id, "object": "charge", "amount": self.amount,
            "amount_refunded": amount_refunded, "payment_intent": self.intent_id,
            "refunded": amount_refunded == self.amount, "status": "succeeded",
            "metadata": {"payment_id": str(self.payment_id)}})

    def dispute_closed(self, amount: int, status: str = "lost",
                       dispute_id: str | None = None) -> dict[str, Any]:
        return event("charge.dispute.closed", {
            "id": dispute_id or new_id("dp"), "object": "dispute", "amount": amount,
            "charge": self.charge_id, "payment_intent": self.intent_id,
            "reason": "fraudulent", "status": status})


    def refund_event(self, type_: str, refund_id: str, amount: int,
                     status: str) -> dict[str, Any]:
        """refund.created / .updated / .failed or charge.refund.updated for one refund."""
        return event(type_, {
            "id": refund_id, "object": "refund", "amount": amount, "charge": self.charge_id,
            "currency": "thb", "payment_intent": self.intent_id, "status": status,
            "metadata": {}})

    def dispute_event(self, type_: str, dispute_id: str, amount: int,
                      status: str) -> dict[str, Any]:
        """A charge.dispute.* event for one dispute."""
        return event(type_, {
            "id": dispute_id, "object": "dispute", "amount": amount, "charge": self.charge_id,
            "currency": "thb", "payment_intent": self.intent_id, "reason": "fraudulent",
            "status": status})

    def pending(self, status: str) -> dict[str, Any]:
        """payment_intent.requires_action or .processing."""
        return event(f"payment_intent.{status}", self.intent(status))


def card(customer: str | None, pm_id: str | None = None, last4: str = "4242",
         exp_year: int = 2031) -> dict[str, Any]:
    return {"id": pm_id or new_id("pm"), "object": "payment_method", "type": "card",
            "customer": customer,
            "card": {"brand": "visa", "last4": last4, "exp_month": 7, "exp_year": exp_year}}
