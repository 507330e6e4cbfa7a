"""The `purchase` use case: a pending payment priced by the database, a Stripe Customer per user
(created once) and one PaymentIntent per (user, Idempotency-Key).

Exactly once, whatever is retried: `begin_purchase` returns the same payment row for the same
user and key (409 for a different body); the Stripe calls carry idempotency keys derived from
the user and the client's key, so a retry (or a concurrent twin) gets the same Customer and
PaymentIntent; a replay of a finished purchase retrieves the recorded PaymentIntent. Stars are
credited only by the webhook.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from shared.container import PerContainer
from shared.errors import AppError, PaymentFailed, ValidationFailed
from shared.http import FunctionUrlRequest, RequestModel

if TYPE_CHECKING:
    from stripe import StripeClient

    from shared.access_tokens import AuthenticatedUser
    from shared.db import Database
    from shared.ratelimit import RateLimiter

RATE_LIMIT_SCOPE = "purchase"
_IDEMPOTENCY_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")


def read_idempotency_key(request: FunctionUrlRequest) -> str | None:
    """The `Idempotency-Key` header (1-255 printable ASCII characters), if any."""
    key = request.header("idempotency-key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ValidationFailed("Idempotency-Key must be 1 to 255 printable ASCII characters.")
    return key


class PurchaseRequest(RequestModel):
    package: Literal["starter", "basic", "premium"]
    # One of the user's saved cards (our id or Stripe's pm_ id), or a Stripe payment method.
    payment_method_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,255}$")


class PurchaseResponse(BaseModel):
    payment_id: uuid.UUID
    payment_intent_id: str
    client_secret: str | None
    status: str
    amount: int
    currency: Literal["THB"] = "THB"
    stars_purchased: int
    stars_bonus: int
    stars_total: int


def request_hash(body: BaseModel) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class PurchaseService:
    def __init__(
        self, *, database: Database, stripe: StripeClient, rate_limiter: RateLimiter | None
    ) -> None:
        self._database = database
        self._stripe = stripe
        self._rate_limiter = rate_limiter

    def _rpc(self, name: str, params: dict[str, Any]) -> Any:
        from shared.db import execute

        return execute(self._database.service.rpc(name, params)).data

    def purchase(
        self, user: AuthenticatedUser, body: PurchaseRequest, client_key: str | None
    ) -> PurchaseResponse:
        if self._rate_limiter is not None:
            self._rate_limiter.hit(RATE_LIMIT_SCOPE, str(user.user_id))
        key = client_key or f"auto:{uuid.uuid4()}"
        # The saved card is checked (and resolved to Stripe's id) by begin_purchase, before
        # any payment row exists; a replay pays with the card the first call resolved.
        payment = self._rpc("begin_purchase", {
            "p_user_id": str(user.user_id), "p_package": body.package,
            "p_idempotency_key": key, "p_request_hash": request_hash(body),
            "p_payment_method": body.payment_method_id,
        })
        method = payment.get("stripe_payment_method_id")
        if method and payment["status"] == "failed":
            # The first answer to this key was a decline; a replay gives the same answer.
            raise PaymentFailed(payment.get("error_message") or None,
                                details={"decline_code": payment.get("error_code"),
                                         "payment_id": payment["id"]})
        customer = payment.get("stripe_customer_id") or self._customer(user)
        intent_id, client_secret = self._payment_intent(user, key, payment, customer, method)
        recorded = self._rpc("record_payment_intent", {
            "p_payment_id": payment["id"], "p_payment_intent_id": intent_id,
        })
        return PurchaseResponse(
            payment_id=payment["id"], payment_intent_id=intent_id,
            client_secret=client_secret, status=recorded["status"],
            amount=payment["amount"], stars_purchased=payment["stars_purchased"],
            stars_bonus=payment["stars_bonus"], stars_total=payment["stars_total"],
        )

    def _customer(self, user: AuthenticatedUser) -> str:
        return ensure_customer(self._database, self._stripe, user.user_id)

    def _payment_intent(self, user: AuthenticatedUser, key: str, payment: dict[str, Any],
                        customer: str, method: str | None) -> tuple[str, str | None]:
        """The payment's PaymentIntent (id, client secret): the recorded one, else created."""
        import stripe

        from shared.stripe_client import error_body, idempotency_key, stripe_error

        try:
            if payment.get("stripe_payment_intent_id"):
                found = self._stripe.v1.payment_intents.retrieve(
                    payment["stripe_payment_intent_id"])
                return found.id, found.client_secret
            params: dict[str, Any] = {
                "amount": payment["amount"], "currency": "thb", "customer": customer,
                "payment_method_types": ["card"],
                "description": f"MimiVibe {payment['package_type']} star package",
                "metadata": {"payment_id": payment["id"], "user_id": str(user.user_id),
                             "package": payment["package_type"]},
            }
            if method is not None:
                params.update({"payment_method": method, "confirm": True, "off_session": True})
            intent = self._stripe.v1.payment_intents.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key("purchase", user.user_id, key)},
            )
            return intent.id, intent.client_secret
        except stripe.CardError as exc:
            error = error_body(exc)
            declined = (error.get("payment_intent") or {}).get("id")
            if declined:
                self._rpc("record_payment_intent", {
                    "p_payment_id": payment["id"], "p_payment_intent_id": declined,
                    "p_declined": True,
                    "p_error_code": error.get("decline_code") or error.get("code"),
                    "p_error_message": error.get("message"),
                })
            failure = stripe_error(exc)
            failure.details = {**(failure.details or {}), "payment_id": payment["id"]}
            raise failure from exc
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc


def ensure_customer(database: Database, client: StripeClient, user_id: uuid.UUID) -> str:
    """The user's Stripe Customer: the recorded one, else created (once, by idempotency key)."""
    import stripe

    from shared.db import execute
    from shared.stripe_client import idempotency_key, stripe_error

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


def build_purchase_service() -> PurchaseService:
    from shared.db import get_database
    from shared.ratelimit import configured_rate_limiter
    from shared.stripe_client import get_stripe_client

    return PurchaseService(
        database=get_database(), stripe=get_stripe_client(),
        rate_limiter=configured_rate_limiter(),
    )


_service: PerContainer[PurchaseService] = PerContainer(build_purchase_service)


def get_purchase_service() -> PurchaseService:
    return _service.get()


def set_purchase_service(service: PurchaseService | None) -> None:
    """Inject one (tests), or drop the cached one with None."""
    _service.set(service)
