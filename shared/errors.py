"""The one error hierarchy of the functions and its HTTP status table.

Every error a function returns is an `AppError`; its class fixes the stable `code` and the HTTP
status (API.md). SQL functions raise domain errors with project SQLSTATEs (class `MV`), mapped
here by code, never by message text.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "Something went wrong on our side."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)


class ConfigError(AppError):
    """Missing or invalid configuration: raised at cold start, never caught silently."""

    code = "configuration_error"
    status = 500
    default_message = "The function is not configured correctly."


class ValidationFailed(AppError):
    code = "validation_error"
    status = 422
    default_message = "The request is not valid."


class InvalidJson(ValidationFailed):
    default_message = "The request body is not valid JSON."


class PayloadTooLarge(AppError):
    code = "payload_too_large"
    status = 413
    default_message = "The request body is too large."


class MethodNotAllowed(AppError):
    code = "method_not_allowed"
    status = 405
    default_message = "This method is not allowed here."


class Unauthorized(AppError):
    code = "unauthorized"
    status = 401
    default_message = "A valid access token is required."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        super().__init__(message, **kwargs)


class NotFound(AppError):
    code = "not_found"
    status = 404
    default_message = "Not found."


class IdempotencyKeyReused(AppError):
    code = "idempotency_key_reused"
    status = 409
    default_message = "This Idempotency-Key was used with a different request."


class RateLimited(AppError):
    code = "rate_limited"
    status = 429
    default_message = "Too many requests; try again later."


class EmailConflict(AppError):
    code = "email_conflict"
    status = 409
    default_message = "This email belongs to another account and is not verified."


class PaymentFailed(AppError):
    code = "payment_failed"
    status = 402
    default_message = "The payment was declined."


class PaymentProviderUnavailable(AppError):
    code = "payment_provider_unavailable"
    status = 502
    default_message = "The payment provider is unavailable; try again."


class InvalidWebhookSignature(AppError):
    code = "invalid_signature"
    status = 400
    default_message = "The webhook signature is not valid."


class InvalidPayload(AppError):
    code = "invalid_payload"
    status = 400
    default_message = "The webhook payload is not valid."


class InvalidQStashSignature(AppError):
    code = "invalid_signature"
    status = 401
    default_message = "The QStash signature is not valid."


class InviteNotFound(AppError):
    code = "invite_not_found"
    status = 404
    default_message = "No user has this invite code."


class AlreadyInvited(AppError):
    code = "already_invited"
    status = 409
    default_message = "You have already redeemed an invite code."


class SelfInvite(AppError):
    code = "self_invite"
    status = 422
    default_message = "You cannot redeem your own invite code."


class InviteWindowClosed(AppError):
    code = "invite_window_closed"
    status = 422
    default_message = "Invite codes can be redeemed only within 7 days of signing up."


class InviteCycle(AppError):
    code = "invite_cycle"
    status = 422
    default_message = "This invite code would create an invite cycle."


class InsufficientStars(AppError):
    code = "insufficient_stars"
    status = 402
    default_message = "Not enough stars."


class InsufficientCoins(AppError):
    code = "insufficient_coins"
    status = 400
    default_message = "Not enough coins."


class NotAMultipleOfRate(AppError):
    code = "not_a_multiple_of_rate"
    status = 400
    default_message = "Coins must be a whole multiple of the exchange rate."


class TooManyPendingReadings(AppError):
    code = "too_many_pending_readings"
    status = 429
    default_message = "You have too many readings waiting; try again when one is done."


class ServiceUnavailable(AppError):
    code = "service_unavailable"
    status = 503
    default_message = "A service we depend on is unavailable; try again."
    # Seconds a client (or Stripe, or QStash) should wait before trying again.
    retry_after_seconds: ClassVar[int] = 5

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(self.retry_after_seconds)})
        super().__init__(message, **kwargs)


# SQLSTATEs raised by the project's SQL functions (`raise exception using errcode = 'MV001',
# message = 'insufficient_stars'`). PostgREST maps unknown SQLSTATEs to 400 and passes the code
# through, so Python switches on `code`, never on the message.
SQLSTATE_ERRORS: dict[str, type[AppError]] = {
    "MV001": InsufficientStars,
    "MV002": InsufficientCoins,
    "MV003": NotAMultipleOfRate,
    "MV004": IdempotencyKeyReused,
    "MV005": NotFound,
    "MV006": ValidationFailed,
    "MV010": InviteNotFound,
    "MV011": AlreadyInvited,
    "MV012": SelfInvite,
    "MV013": InviteWindowClosed,
    "MV014": InviteCycle,
    "MV020": EmailConflict,
    "MV030": TooManyPendingReadings,
}


def from_sqlstate(code: str | None, message: str | None = None) -> AppError | None:
    """The `AppError` for a project SQLSTATE, or None when the code is not one of ours."""
    cls = SQLSTATE_ERRORS.get(code or "")
    return cls() if cls else None
