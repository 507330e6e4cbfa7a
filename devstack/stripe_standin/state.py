"""In-memory Stripe account: objects by id, test cards behind payment methods, events, and
idempotent results. One re-entrant lock guards it all (handlers run on the server's event loop,
tests may read from their own thread)."""

from __future__ import annotations

import copy
import secrets
import string
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from devstack.stripe_standin.cards import TestCard
from devstack.stripe_standin.errors import no_such

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def now() -> int:
    return int(time.time())


@dataclass(frozen=True)
class RequestContext:
    """What Stripe records in `event.request`: the API request that caused the event."""

    request_id: str | None = None
    idempotency_key: str | None = None
    # Where the stand-in was reached (for the pages it serves itself, such as PromptPay's).
    base_url: str | None = None


AUTOMATIC = RequestContext()


@dataclass
class IdempotentResult:
    method: str
    path: str
    params: dict[str, Any]
    status: int
    body: bytes


class EventSink(Protocol):
    def endpoint_count(self) -> int: ...

    def submit(self, event_id: str) -> None: ...


class _NoSink:
    def endpoint_count(self) -> int:
        return 0

    def submit(self, event_id: str) -> None:
        return None


# Collection name → the noun Stripe uses in "No such <noun>: '<id>'".
_NOUNS = {
    "customers": "customer",
    "payment_methods": "PaymentMethod",
    "payment_intents": "payment_intent",
    "charges": "charge",
    "refunds": "refund",
    "setup_intents": "setupintent",
    "disputes": "dispute",
    "events": "event",
}
_PREFIXES = {
    "cus": "customers", "pm": "payment_methods", "pi": "payment_intents", "ch": "charges",
    "re": "refunds", "seti": "setup_intents", "dp": "disputes", "evt": "events",
}


class StandinState:
    def __init__(self, api_version: str, sink: EventSink | None = None) -> None:
        self.lock = threading.RLock()
        self.api_version = api_version
        self.sink: EventSink = sink or _NoSink()
        self.collections: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in _NOUNS}
        self.cards: dict[str, TestCard] = {}
        self.idempotency: dict[str, IdempotentResult] = {}
        # The status new refunds start in; None: succeeded for cards, requires_action for
        # PromptPay (the customer must give bank details), as in Stripe.
        self.refund_start: str | None = None

    @property
    def customers(self) -> dict[str, dict[str, Any]]:
        return self.collections["customers"]

    @property
    def payment_methods(self) -> dict[str, dict[str, Any]]:
        return self.collections["payment_methods"]

    @property
    def payment_intents(self) -> dict[str, dict[str, Any]]:
        return self.collections["payment_intents"]

    @property
    def charges(self) -> dict[str, dict[str, Any]]:
        return self.collections["charges"]

    @property
    def refunds(self) -> dict[str, dict[str, Any]]:
        return self.collections["refunds"]

    @property
    def setup_intents(self) -> dict[str, dict[str, Any]]:
        return self.collections["setup_intents"]

    @property
    def disputes(self) -> dict[str, dict[str, Any]]:
        return self.collections["disputes"]

    @property
    def events(self) -> dict[str, dict[str, Any]]:
        return self.collections["events"]

    def get(self, collection: str, object_id: str, param: str = "id") -> dict[str, Any]:
        found = self.collections[collection].get(object_id)
        if found is None:
            raise no_such(_NOUNS[collection], object_id, param)
        return found

    def find(self, object_id: str) -> dict[str, Any] | None:
        collection = _PREFIXES.get(object_id.split("_", 1)[0])
        return self.collections[collection].get(object_id) if collection else None

    def emit(self, type_: str, obj: dict[str, Any], ctx: RequestContext,
             previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record an event with a snapshot of `obj` and hand it to the webhook dispatcher."""
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = copy.deepcopy(previous)
        event_id = new_id("evt")
        event: dict[str, Any] = {
            "id": event_id,
            "object": "event",
            "api_version": self.api_version,
            "created": now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": self.sink.endpoint_count(),
            "request": {"id": ctx.request_id, "idempotency_key": ctx.idempotency_key},
            "type": type_,
        }
        self.events[event_id] = event
        self.sink.submit(event_id)
        return event
