"""Stripe API errors: `{"error": {type, code, decline_code, message, param, doc_url, ...}}`.

stripe-python picks its exception class from the HTTP status (400/404 → InvalidRequestError or
IdempotencyError by `type`, 401 → AuthenticationError, 402 → CardError), so the status matters
as much as the body.
"""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    def __init__(self, status: int, type_: str, message: str, *, code: str | None = None,
                 param: str | None = None, decline_code: str | None = None,
                 extra: dict[str, Any] | None = None, saved: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        # Stripe saves an idempotent result only once the request started executing: card
        # declines are replayed, parameter validation failures are not.
        self.saved = saved

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = "https://stripe.com/docs/error-codes/" + self.code.replace("_", "-")
        if self.param:
            error["param"] = self.param
        if self.decline_code:
            error["decline_code"] = self.decline_code
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, "invalid_request_error", message, param=param, code=code)


def no_such(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, "invalid_request_error", f"No such {kind}: '{object_id}'",
                       param=param, code="resource_missing")


def unknown_param(name: str) -> StripeError:
    return invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def missing_param(name: str) -> StripeError:
    return invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")


def bad_value(name: str, message: str) -> StripeError:
    return invalid(message, param=name, code="parameter_invalid_string")


def unexpected_state(message: str, code: str) -> StripeError:
    return invalid(message, code=code)


def authentication(message: str) -> StripeError:
    return StripeError(401, "invalid_request_error", message)


def idempotency(message: str) -> StripeError:
    return StripeError(400, "idempotency_error", message)


def card_declined(code: str, decline_code: str | None, message: str,
                  extra: dict[str, Any]) -> StripeError:
    return StripeError(402, "card_error", message, code=code, decline_code=decline_code,
                       extra=extra, saved=True)
