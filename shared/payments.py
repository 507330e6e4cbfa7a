"""The `purchase` use case: a pending payment priced by the database, a Stripe Customer per user
(created once) and one PaymentIntent per (user, Idempotency-Key), paid in one of three ways:

- card, no saved card: a PaymentIntent the app's PaymentSheet confirms (running 3-D Secure
  itself), with a CustomerSession client secret so the sheet shows and reuses saved cards;
- card, a saved card: confirmed here with the customer present (never `off_session`, which
  tells Stripe the customer cannot authenticate, so a 3-D Secure card would be declined for
  good); a card asking for authentication answers `requires_action` with the next action for
  the app's SDK; a decline is 402 `payment_failed` with the decline code;
- PromptPay: created and confirmed with the user's email; the answer carries the QR code.

Exactly once, whatever is retried: `begin_purchase` returns the same payment row for the same
user and key (409 for a different body); the Stripe calls carry idempotency keys derived from
the user and the client's key, so a retry (or a concurrent twin) gets the same Customer,
PaymentIntent and CustomerSession; a replay of a finished purchase retrieves the recorded
PaymentIntent (its secret and QR code). Stars are credited only by the webhook.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.errors import PaymentFailed
from shared.request_model import RequestModel

if TYPE_CHECKING:
    from stripe import PaymentIntent, StripeClient

    from shared.access_tokens import AuthenticatedUser
    from shared.db import Database



class PurchaseRequest(RequestModel):
    package: Literal["starter", "basic", "premium"]
    payment_method_type: Literal["card", "promptpay"] = "card"
    # One of the user's saved cards (our id or Stripe's pm_ id), or a Stripe payment method.
    payment_method_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,255}$")

    @model_validator(mode="after")
    def _saved_card_only_with_card(self) -> PurchaseRequest:
        if self.payment_method_type == "promptpay" and self.payment_method_id is not None:
            raise ValueError("payment_method_id is a saved card; PromptPay takes none")
        return self


class NextAction(BaseModel):
    """What the app does next: `use_stripe_sdk` / `redirect_to_url` (3-D Secure, finished
    with the Stripe SDK's handleNextAction) or `promptpay_display_qr_code`."""

    model_config = ConfigDict(defer_build=True)

    type: str
    redirect_url: str | None = None


class PromptPayCode(BaseModel):
    model_config = ConfigDict(defer_build=True)

    qr_data: str
    image_url_png: str
    image_url_svg: str
    hosted_instructions_url: str
    expires_at: int | None


class PurchaseResponse(BaseModel):
    model_config = ConfigDict(defer_build=True)

    payment_id: uuid.UUID
    payment_intent_id: str
    client_secret: str | None
    status: str
    amount: int
    currency: Literal["THB"] = "THB"
    stars_purchased: int
    stars_bonus: int
    stars_total: int
    payment_method_type: Literal["card", "promptpay"] = "card"
    customer_id: str | None = None
    customer_session_client_secret: str | None = None
    next_action: NextAction | None = None
    promptpay: PromptPayCode | None = None


def request_hash(body: BaseModel) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class PurchaseService:
    def __init__(
        self, *, database: Database, stripe: StripeClient
    ) -> None:
        self._database = database
        self._stripe = stripe

    def _rpc(self, name: str, params: dict[str, Any]) -> Any:
        from shared.db import execute

        return execute(self._database.service.rpc(name, params)).data

    def purchase(
        self, user: AuthenticatedUser, body: PurchaseRequest, client_key: str | None
    ) -> PurchaseResponse:
        key = client_key or f"auto:{uuid.uuid4()}"
        # The saved card is checked (and resolved to Stripe's id) by begin_purchase, before
        # any payment row exists; a replay pays with the card the first call resolved.
        payment = self._rpc("begin_purchase", {
            "p_user_id": str(user.user_id), "p_package": body.package,
            "p_idempotency_key": key, "p_request_hash": request_hash(body),
            "p_payment_method": body.payment_method_id,
            "p_payment_method_type": body.payment_method_type,
        })
        method = payment.get("stripe_payment_method_id")
        if method and payment["status"] == "failed":
            # The first answer to this key was a decline; a replay gives the same answer.
            raise PaymentFailed(payment.get("error_message") or None,
                                details={"decline_code": payment.get("error_code"),
                                         "payment_id": payment["id"]})
        customer = payment.get("stripe_customer_id") or self._customer(user)
        intent = self._payment_intent(user, key, payment, customer, method)
        self._rpc("record_payment_intent", {
            "p_payment_id": payment["id"], "p_payment_intent_id": intent.id,
            "p_intent_status": intent.status,
        })
        session = None
        if body.payment_method_type == "card" and method is None:
            session = self._customer_session(user, key, customer)
        return PurchaseResponse(
            payment_id=payment["id"], payment_intent_id=intent.id,
            client_secret=intent.client_secret, status=intent.status,
            amount=payment["amount"], stars_purchased=payment["stars_purchased"],
            stars_bonus=payment["stars_bonus"], stars_total=payment["stars_total"],
            payment_method_type=body.payment_method_type, customer_id=customer,
            customer_session_client_secret=session, **next_steps(intent),
        )

    def _customer(self, user: AuthenticatedUser) -> str:
        from shared.stripe_client import ensure_customer

        return ensure_customer(self._database, self._stripe, user.user_id)

    def _customer_session(self, user: AuthenticatedUser, key: str, customer: str) -> str:
        """A CustomerSession for the PaymentSheet: show, reuse, save and remove saved cards."""
        import stripe

        from shared.stripe_client import idempotency_key, stripe_error

        try:
            session = self._stripe.v1.customer_sessions.create(
                {"customer": customer, "components": {"mobile_payment_element": {
                    "enabled": True, "features": {
                        "payment_method_redisplay": "enabled", "payment_method_save": "enabled",
                        "payment_method_remove": "enabled"}}}},
                {"idempotency_key": idempotency_key("customer-session", user.user_id, key)},
            )
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc
        return session.client_secret

    def _payment_intent(self, user: AuthenticatedUser, key: str, payment: dict[str, Any],
                        customer: str, method: str | None) -> PaymentIntent:
        """The payment's PaymentIntent: the recorded one, else created (and confirmed with a
        saved card or PromptPay)."""
        import stripe

        from shared.stripe_client import error_body, idempotency_key, stripe_error

        try:
            if payment.get("stripe_payment_intent_id"):
                return self._stripe.v1.payment_intents.retrieve(
                    payment["stripe_payment_intent_id"])
            params = intent_params(payment, customer, method, user.user_id)
            return self._stripe.v1.payment_intents.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key("purchase", user.user_id, key)},
            )
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


def intent_params(payment: dict[str, Any], customer: str, method: str | None,
                  user_id: uuid.UUID) -> dict[str, Any]:
    params: dict[str, Any] = {
        "amount": payment["amount"], "currency": "thb", "customer": customer,
        "description": f"MimiVibe {payment['package_type']} star package",
        "metadata": {"payment_id": payment["id"], "user_id": str(user_id),
                     "package": payment["package_type"]},
    }
    if payment.get("payment_method_type") == "promptpay":
        params.update({"payment_method_types": ["promptpay"], "confirm": True,
                       "payment_method_data": {"type": "promptpay",
                                               "billing_details": {"email": payment["email"]}}})
    else:
        params["payment_method_types"] = ["card"]
        if method is not None:
            # The customer is present: Stripe may ask for 3-D Secure, and the app's SDK
            # answers it from the client secret.
            params.update({"payment_method": method, "confirm": True, "use_stripe_sdk": True})
    return params


def next_steps(intent: PaymentIntent) -> dict[str, Any]:
    """The response's `next_action` and `promptpay` from the PaymentIntent's next action."""
    action = intent.next_action
    if intent.status != "requires_action" or action is None:
        return {}
    if action.type == "promptpay_display_qr_code" and action.promptpay_display_qr_code:
        code = action.promptpay_display_qr_code
        return {"next_action": NextAction(type=action.type), "promptpay": PromptPayCode(
            qr_data=code.data, image_url_png=code.image_url_png,
            image_url_svg=code.image_url_svg,
            hosted_instructions_url=code.hosted_instructions_url,
            expires_at=getattr(code, "expires_at", None))}
    redirect = action.redirect_to_url.url if action.type == "redirect_to_url" \
        and action.redirect_to_url else None
    return {"next_action": NextAction(type=action.type, redirect_url=redirect)}
