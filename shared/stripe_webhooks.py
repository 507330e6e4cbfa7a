"""The `stripe-webhook` use case: verify the signature on the raw body, then apply the event with
one SQL function (`apply_stripe_event`) that records the event id in the same transaction as its
effect.

Signatures follow Stripe's scheme: `Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>...]`, each
v1 an HMAC-SHA256 of `"<t>.<raw body>"` keyed with a `whsec_` secret. The event is accepted when
any v1 matches any configured secret (during a secret roll Stripe signs with both the old and the
new secret, and `STRIPE_WEBHOOK_SECRET` may list both, comma-separated) and `t` is within the
tolerance. Verified here with the standard library rather than stripe-python, which would add a
third of a second to every cold start of the webhook. Event types we do not handle are
acknowledged without touching the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import observability
from shared.errors import InvalidPayload, InvalidWebhookSignature
from shared.rules import STRIPE_EVENT_ID_PATTERN

if TYPE_CHECKING:
    from shared.db import Database

TOLERANCE_SECONDS = 300
# The event_type dimension of a verified delivery whose body is not a Stripe event.
MALFORMED_EVENT_TYPE = "malformed"
APPLY_FUNCTION = "apply_stripe_event"
# The types public.apply_stripe_event handles (its public.stripe_event_types(); a test keeps the
# two equal). Others are acknowledged without touching the database; a listed type the SQL did
# not handle would be refused there, never recorded as processed.
HANDLED_TYPES = frozenset({
    "payment_intent.requires_action",
    "payment_intent.processing",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "charge.refunded",
    "charge.refund.updated",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
    "charge.dispute.closed",
    "payment_method.attached",
    "payment_method.updated",
    "payment_method.detached",
})


def parse_signature_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    if timestamp is None:
        raise ValueError("no timestamp")
    return timestamp, signatures


def verify_signature(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance_seconds: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raise `InvalidWebhookSignature` unless `header` signs exactly `payload`, recently."""
    if not header or not secrets:
        raise InvalidWebhookSignature()
    try:
        timestamp, signatures = parse_signature_header(header)
    except ValueError as exc:
        raise InvalidWebhookSignature("The Stripe-Signature header is malformed.") from exc
    signed = str(timestamp).encode("ascii") + b"." + payload
    expected = [hmac.new(s.encode("utf-8"), signed, hashlib.sha256).hexdigest() for s in secrets]
    if not any(hmac.compare_digest(e, s) for e in expected for s in signatures):
        raise InvalidWebhookSignature()
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise InvalidWebhookSignature("The webhook signature is too old (or from the future).")


class EventData(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")

    object: dict[str, Any]
    previous_attributes: dict[str, Any] | None = None


class StripeEvent(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")

    id: str = Field(pattern=STRIPE_EVENT_ID_PATTERN)
    type: str = Field(min_length=1, max_length=200)
    data: EventData


class WebhookResult(BaseModel):
    model_config = ConfigDict(defer_build=True)

    received: bool = True
    duplicate: bool
    result: str
    stars_credited: int = 0
    stars_clawed_back: int = 0


def parse_event(payload: bytes) -> StripeEvent:
    try:
        event = StripeEvent.model_validate(json.loads(payload))
    except (ValueError, ValidationError) as exc:
        raise InvalidPayload() from exc
    if not isinstance(event.data.object.get("id"), str):
        raise InvalidPayload("The event's object has no id.")
    return event


class WebhookProcessor:
    def __init__(self, *, database: Database, secrets: Sequence[str],
                 tolerance_seconds: int = TOLERANCE_SECONDS) -> None:
        self._database = database
        self._secrets = list(secrets)
        self._tolerance = tolerance_seconds

    def handle(self, payload: bytes, signature: str | None) -> WebhookResult:
        """Verify, parse and apply one delivery; the WebhookEvents metric records its outcome."""
        try:
            verify_signature(payload, signature, self._secrets, tolerance_seconds=self._tolerance)
        except InvalidWebhookSignature:
            observability.record_webhook_event(None, "rejected")
            raise
        try:
            event = parse_event(payload)
        except InvalidPayload:
            observability.record_webhook_event(MALFORMED_EVENT_TYPE, "rejected")
            raise
        if event.type not in HANDLED_TYPES:
            observability.record_webhook_event(event.type, "ignored")
            return WebhookResult(duplicate=False, result="ignored")
        try:
            result = self.apply(event)
        except Exception:
            observability.record_webhook_event(event.type, "failed")
            raise
        observability.record_webhook_event(event.type, "duplicate" if result.duplicate else "applied")
        return result

    def apply(self, event: StripeEvent) -> WebhookResult:
        from shared.db import execute

        params: dict[str, Any] = {
            "p_event_id": event.id, "p_event_type": event.type,
            "p_object": event.data.object, "p_previous": event.data.previous_attributes,
        }
        data = execute(self._database.service.rpc(APPLY_FUNCTION, params)).data
        result = WebhookResult.model_validate(data)
        observability.record_stars_moved(result.stars_credited, result.stars_clawed_back)
        return result


def webhook_secrets(value: str) -> list[str]:
    """`STRIPE_WEBHOOK_SECRET`: one secret, or several separated by commas during a roll."""
    return [s.strip() for s in value.split(",") if s.strip()]
