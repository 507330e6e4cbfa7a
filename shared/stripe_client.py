"""The Stripe client factory (one client per settings, `shared.bootstrap`), no `stripe.api_key`.

`STRIPE_SECRET_KEY` is the key; `STRIPE_API_BASE` points the client at another API host (the
local stand-in) and is unset in production. The SDK is imported here, on first use, so that
functions which never talk to Stripe (or only verify webhooks) do not pay for it at cold start.
`stripe_error(exc)` maps the SDK's exceptions to the project's errors in one place.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

from shared.errors import (
    AppError,
    IdempotencyKeyReused,
    PaymentFailed,
    PaymentProviderUnavailable,
    ValidationFailed,
)
from shared.settings import Settings

if TYPE_CHECKING:
    import uuid

    from stripe import StripeClient

    from shared.db import Database

logger = logging.getLogger("mimivibe.stripe")

TIMEOUT_SECONDS = 10.0
# The SDK retries connection failures and 409/5xx answers; our idempotency keys make that safe.
MAX_NETWORK_RETRIES = 2
KEY_PREFIX = "mimivibe"


def build_stripe_client(settings: Settings) -> StripeClient:
    import stripe

    settings.require("stripe_secret_key")
    assert settings.stripe_secret_key is not None
    base = {"api": settings.stripe_api_base.rstrip("/")} if settings.stripe_api_base else None
    return stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses=base,  # type: ignore[arg-type]
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=stripe.HTTPXClient(timeout=TIMEOUT_SECONDS, allow_sync_methods=True),
    )


def idempotency_key(purpose: str, user_id: object, client_key: str | None = None) -> str:
    """Stripe's Idempotency-Key for one effect of one user (and the client's own key).

    The client's key is hashed: it is the client's string, and Stripe keys are logged by Stripe.
    """
    parts = [KEY_PREFIX, purpose, str(user_id)]
    if client_key is not None:
        parts.append(hashlib.sha256(client_key.encode("utf-8")).hexdigest()[:48])
    return ":".join(parts)


def error_body(exc: Any) -> dict[str, Any]:
    body = getattr(exc, "json_body", None)
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def stripe_error(exc: Exception) -> AppError:
    """The `AppError` for an exception raised by the Stripe SDK."""
    import stripe

    if isinstance(exc, stripe.CardError):
        error = error_body(exc)
        return PaymentFailed(
            error.get("message") or None,
            details={"decline_code": error.get("decline_code") or error.get("code")},
        )
    if isinstance(exc, stripe.IdempotencyError):
        return IdempotencyKeyReused()
    if isinstance(exc, stripe.InvalidRequestError):
        error = error_body(exc)
        logger.warning("Stripe refused a request: %s", error.get("code") or "no code")
        return ValidationFailed(
            "The payment provider refused the request.",
            details={"provider_code": error.get("code"), "param": error.get("param")},
        )
    if isinstance(exc, stripe.StripeError):
        logger.error("Stripe call failed: %s", type(exc).__name__)
        return PaymentProviderUnavailable()
    return AppError()


def ensure_customer(database: Database, client: StripeClient, user_id: uuid.UUID) -> str:
    """The user's Stripe Customer: the recorded one, else created (once, by idempotency key)."""
    import stripe

    from shared.db import execute

    rows = execute(database.service.table("stripe_customers").select("stripe_customer_id").eq(
        "user_id", str(user_id))).data or []
    if rows:
        return str(rows[0]["stripe_customer_id"])
    try:
        customer = client.v1.customers.create(
            {"metadata": {"user_id": str(user_id)}},
            {"idempotency_key": idempotency_key("customer", user_id)},
        )
    except stripe.StripeError as exc:
        raise stripe_error(exc) from exc
    recorded = execute(database.service.rpc("record_stripe_customer", {
        "p_user_id": str(user_id), "p_stripe_customer_id": customer.id})).data
    if not isinstance(recorded, str) or not recorded:
        raise AppError("The Stripe customer was not recorded.")
    return recorded
