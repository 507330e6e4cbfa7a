"""The `payment-methods` use cases: start saving a card (a SetupIntent for the user's Customer)
and remove a saved card (detach it at Stripe, deactivate the row at once).

The card itself reaches `user_payment_methods` through the webhook (payment_method.attached), so
the app never sends card data to us. A SetupIntent is created once per (user, Idempotency-Key):
Stripe's idempotency key covers concurrent twins, the recorded id every later replay.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from shared.errors import NotFound
from shared.request_model import RequestModel

if TYPE_CHECKING:
    from stripe import StripeClient

    from shared.access_tokens import AuthenticatedUser
    from shared.db import Database



class SetupRequest(RequestModel):
    """No fields: the customer is the caller's and the usage is always off-session."""


class SetupResponse(BaseModel):
    model_config = ConfigDict(defer_build=True)

    setup_intent_id: str
    client_secret: str | None


class PaymentMethodsService:
    def __init__(
        self, *, database: Database, stripe: StripeClient
    ) -> None:
        self._database = database
        self._stripe = stripe

    def setup(self, user: AuthenticatedUser, client_key: str | None) -> SetupResponse:
        """A SetupIntent for the caller's Customer; with a client key, the same one every time
        (recorded in the database, so a replay does not depend on Stripe's 24-hour window)."""
        import stripe

        from shared.stripe_client import ensure_customer, idempotency_key, stripe_error

        try:
            recorded = self._setup_rpc("find_setup_intent", {
                "p_user_id": str(user.user_id), "p_idempotency_key": client_key,
            }) if client_key else None
            if recorded:
                found = self._stripe.v1.setup_intents.retrieve(recorded)
                return SetupResponse(setup_intent_id=found.id, client_secret=found.client_secret)
            customer = ensure_customer(self._database, self._stripe, user.user_id)
            key = client_key or f"auto:{uuid.uuid4()}"
            intent = self._stripe.v1.setup_intents.create(
                {"customer": customer, "payment_method_types": ["card"], "usage": "off_session",
                 "metadata": {"user_id": str(user.user_id)}},  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key("setup", user.user_id, key)},
            )
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc
        if client_key:
            self._setup_rpc("record_setup_intent", {
                "p_user_id": str(user.user_id), "p_idempotency_key": client_key,
                "p_setup_intent_id": intent.id,
            })
        return SetupResponse(setup_intent_id=intent.id, client_secret=intent.client_secret)

    def _setup_rpc(self, name: str, params: dict[str, Any]) -> str | None:
        from shared.db import execute

        data = execute(self._database.service.rpc(name, params)).data
        return data if isinstance(data, str) and data else None

    def remove(self, user: AuthenticatedUser, method_id: str) -> None:
        """Detach and deactivate one of the caller's cards; anything else is 404."""
        from shared.db import execute

        card = self._own_card(user, method_id)
        if not card["is_active"]:
            return
        self._detach(card["stripe_payment_method_id"])
        execute(self._database.service.rpc("deactivate_payment_method", {
            "p_user_id": str(user.user_id), "p_payment_method_id": card["id"]}))

    def _own_card(self, user: AuthenticatedUser, method_id: str) -> dict[str, Any]:
        from shared.db import execute

        try:
            row_id: uuid.UUID | None = uuid.UUID(method_id)
        except ValueError:
            row_id = None
        query = self._database.for_user(user.access_token).table("user_payment_methods").select(
            "id,stripe_payment_method_id,is_active")
        query = query.eq("id", str(row_id)) if row_id else query.eq(
            "stripe_payment_method_id", method_id)
        rows = execute(query).data or []
        if not rows:
            raise NotFound("You have no saved card with this id.")
        return dict(rows[0])

    def _detach(self, stripe_payment_method_id: str) -> None:
        import stripe

        from shared.stripe_client import error_body, stripe_error

        try:
            self._stripe.v1.payment_methods.detach(stripe_payment_method_id)
        except stripe.InvalidRequestError as exc:
            # Already detached (or gone) at Stripe: the goal is reached.
            if error_body(exc).get("code") not in (
                "payment_method_unexpected_state", "resource_missing"
            ):
                raise stripe_error(exc) from exc
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc
