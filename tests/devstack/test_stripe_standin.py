"""The Stripe stand-in, driven by the real stripe-python client, delivering webhooks to a local
receiver whose signatures verify with stripe-python's own verification."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from devstack.serve import ServerThread
from devstack.stripe_standin import (
    StandinControl,
    StripeStandinSettings,
    create_app,
    signature_header,
)
from devstack.stripe_standin.delivery import DeliveryMode
from devstack.stripe_standin.forms import decode

API_KEY = "sk_test_standin_" + "a1b2c3d4"
SECRET = "whsec_test_primary_secret"


@dataclass
class Delivery:
    raw: bytes
    signature: str
    event: dict[str, Any]
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class Receiver:
    """The webhook endpoint of these tests: records deliveries, fails on request."""

    deliveries: list[Delivery] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def hook(self, request: Request) -> JSONResponse:
        raw = await request.body()
        event = json.loads(raw)
        with self.lock:
            self.deliveries.append(Delivery(raw, request.headers["stripe-signature"], event))
            remaining = self.failures.get(event["type"], 0)
            if remaining:
                self.failures[event["type"]] = remaining - 1
                return JSONResponse({"error": "boom"}, 500)
        return JSONResponse({"received": True})

    def matching(self, predicate: Callable[[dict[str, Any]], bool]) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if predicate(d.event)]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], count: int = 1,
                 timeout: float = 5.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.matching(predicate)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} deliveries, got {len(self.matching(predicate))}")

    def reset(self) -> None:
        with self.lock:
            self.deliveries.clear()
            self.failures.clear()


def about(object_id: str, type_: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["data"]["object"].get("id") == object_id and type_ in (None, e["type"])


@dataclass
class Stack:
    url: str
    hook_url: str
    app: Starlette
    receiver: Receiver
    client: stripe.StripeClient
    control: StandinControl


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    receiver = Receiver()
    hook_app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    with ServerThread(hook_app, name="stripe-hook") as hook_server:
        hook_url = hook_server.url + "/hook"
        settings = StripeStandinSettings(
            api_key=API_KEY, webhook_secret=SECRET, webhook_url=hook_url,
            delivery_concurrency=1, max_retries=3, retry_base_delay=0.05, retry_max_delay=0.2,
            delivery_timeout=5.0)
        app = create_app(settings)
        with ServerThread(app, name="stripe-standin") as server:
            client = stripe.StripeClient(API_KEY, base_addresses={"api": server.url},
                                         max_network_retries=0)
            with StandinControl(server.url, API_KEY) as control:
                yield Stack(server.url, hook_url, app, receiver, client, control)


@pytest.fixture
def env(stack: Stack) -> Iterator[Stack]:
    standin = stack.app.state.standin
    assert standin.wait_quiet(5.0)
    stack.receiver.reset()
    yield stack
    standin.dispatcher.set_mode(DeliveryMode())
    standin.dispatcher.release()
    standin.dispatcher.set_endpoint(stack.hook_url, SECRET)
    assert standin.wait_quiet(5.0)
    stack.receiver.reset()


def verified(stack: Stack, delivery: Delivery, secret: str = SECRET) -> stripe.Event:
    assert stripe.WebhookSignature.verify_header(delivery.raw, delivery.signature, secret, 300)
    return stack.client.construct_event(delivery.raw, delivery.signature, secret)


def text(value: object) -> str:
    """An id field of a stripe object (typed as id-or-expanded-object) that must be an id."""
    assert isinstance(value, str)
    return value


def new_customer(client: stripe.StripeClient, **extra: Any) -> stripe.Customer:
    params: Any = {"email": "user@example.com", **extra}
    return client.v1.customers.create(params=params)


def paid_intent(client: stripe.StripeClient, amount: int = 4900) -> stripe.PaymentIntent:
    customer = new_customer(client)
    return client.v1.payment_intents.create(params={
        "amount": amount, "currency": "thb", "customer": customer.id,
        "payment_method": "pm_card_visa", "confirm": True, "off_session": True,
        "metadata": {"payment_id": "pay_1"}})


def test_customer_is_created_and_retrieved_with_metadata(env: Stack) -> None:
    created = new_customer(env.client, name="Mimi", metadata={"user_id": "u-1"})
    fetched = env.client.v1.customers.retrieve(created.id)
    assert created.id.startswith("cus_")
    assert fetched.metadata is not None
    assert (fetched.email, fetched.name, fetched.metadata["user_id"]) == (
        "user@example.com", "Mimi", "u-1")
    event = verified(env, env.receiver.wait_for(about(created.id, "customer.created"))[0])
    assert event.data.object.id == created.id


def test_unknown_customer_is_a_404_invalid_request(env: Stack) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        env.client.v1.customers.retrieve("cus_missing")
    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")


def test_confirmed_payment_succeeds_and_signed_events_verify(env: Stack) -> None:
    intent = paid_intent(env.client)
    charge = env.client.v1.charges.retrieve(text(intent.latest_charge))
    assert (intent.status, intent.amount_received, intent.currency) == ("succeeded", 4900, "thb")
    assert (charge.status, charge.paid, charge.payment_intent) == ("succeeded", True, intent.id)
    assert charge.metadata["payment_id"] == "pay_1"
    succeeded = env.receiver.wait_for(about(intent.id, "payment_intent.succeeded"))[0]
    event = verified(env, succeeded)
    assert (event.type, event.object, event.livemode) == ("payment_intent.succeeded", "event",
                                                          False)
    assert event.id.startswith("evt_") and event.api_version
    assert event.data.object.latest_charge == charge.id
    assert event.request is not None and event.request.idempotency_key
    created = verified(env, env.receiver.wait_for(about(intent.id, "payment_intent.created"))[0])
    assert created.data.object.status == "requires_confirmation"
    charged = verified(env, env.receiver.wait_for(about(charge.id, "charge.succeeded"))[0])
    assert charged.data.object.amount == 4900


def test_expand_returns_the_charge_object(env: Stack) -> None:
    intent = paid_intent(env.client)
    expanded = env.client.v1.payment_intents.retrieve(intent.id,
                                                      params={"expand": ["latest_charge"]})
    charge = expanded.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert (charge.object, charge.id) == ("charge", intent.latest_charge)


def test_declined_card_raises_card_error_and_emits_payment_failed(env: Stack) -> None:
    with pytest.raises(stripe.CardError) as caught:
        env.client.v1.payment_intents.create(params={
            "amount": 14900, "currency": "thb", "payment_method": "pm_card_chargeDeclined",
            "confirm": True, "automatic_payment_methods": {"enabled": True,
                                                          "allow_redirects": "never"}})
    error = caught.value
    assert (error.http_status, error.code) == (402, "card_declined")
    assert error.error is not None and error.error.decline_code == "generic_decline"
    assert error.error.payment_intent is not None
    intent_id = error.error.payment_intent.id
    intent = env.client.v1.payment_intents.retrieve(intent_id)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error is not None
    assert intent.last_payment_error.code == "card_declined"
    failed = verified(env, env.receiver.wait_for(about(intent_id,
                                                       "payment_intent.payment_failed"))[0])
    assert failed.data.object.last_payment_error.decline_code == "generic_decline"


def test_same_idempotency_key_replays_the_first_response(env: Stack) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "idem-replay-1"}
    first = env.client.v1.customers.create(params={"email": "a@example.com"}, options=options)
    second = env.client.v1.customers.create(params={"email": "a@example.com"}, options=options)
    assert second.id == first.id
    assert second.last_response is not None
    assert second.last_response.headers["idempotent-replayed"] == "true"
    assert env.control.wait_quiet()
    assert [e["object_id"] for e in env.control.events("customer.created")
            if e["object_id"] == first.id] == [first.id]
    assert len(env.receiver.matching(about(first.id, "customer.created"))) == 1


def test_same_key_with_different_params_is_an_idempotency_error(env: Stack) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "idem-conflict-1"}
    env.client.v1.customers.create(params={"email": "a@example.com"}, options=options)
    with pytest.raises(stripe.IdempotencyError) as caught:
        env.client.v1.customers.create(params={"email": "b@example.com"}, options=options)
    assert caught.value.http_status == 400


def test_declines_are_replayed_under_the_same_key(env: Stack) -> None:
    params: Any = {"amount": 4900, "currency": "thb", "payment_method": "pm_card_chargeDeclined",
              "confirm": True}
    options: stripe.RequestOptions = {"idempotency_key": "idem-decline-1"}
    ids = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as caught:
            env.client.v1.payment_intents.create(params=params, options=options)
        assert caught.value.error is not None and caught.value.error.payment_intent is not None
        ids.append(caught.value.error.payment_intent.id)
    assert ids[0] == ids[1]


def test_partial_then_full_refund_reports_running_amount_refunded(env: Stack) -> None:
    intent = paid_intent(env.client, amount=14900)
    partial = env.client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 4900})
    rest = env.client.v1.refunds.create(params={"charge": text(intent.latest_charge)})
    assert (partial.amount, rest.amount, rest.status) == (4900, 10000, "succeeded")
    refunded = env.receiver.wait_for(about(text(intent.latest_charge), "charge.refunded"),
                                     count=2)
    charges = sorted((verified(env, d).data.object for d in refunded),
                     key=lambda c: c.amount_refunded)
    assert [(c.amount_refunded, c.refunded) for c in charges] == [(4900, False), (14900, True)]
    assert {r.id for r in charges[-1].refunds.data} == {partial.id, rest.id}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        env.client.v1.refunds.create(params={"payment_intent": intent.id})
    assert caught.value.code == "charge_already_refunded"


def test_list_endpoints_filter_by_the_parameters_given(env: Stack) -> None:
    mine, other = paid_intent(env.client), paid_intent(env.client)
    refund = env.client.v1.refunds.create(params={"payment_intent": mine.id, "amount": 100})
    v1 = env.client.v1

    assert [c.id for c in v1.charges.list(params={"payment_intent": mine.id}).data] == [
        text(mine.latest_charge)]
    assert [c.id for c in v1.charges.list(params={
        "payment_intent": mine.id, "customer": text(other.customer)}).data] == []
    assert [p.id for p in v1.payment_intents.list(
        params={"customer": text(other.customer)}).data] == [other.id]
    assert [r.id for r in v1.refunds.list(params={"charge": text(mine.latest_charge)}).data] == [
        refund.id]
    assert v1.refunds.list(params={"payment_intent": other.id}).data == []
    setup = v1.setup_intents.create(params={"customer": text(mine.customer)})
    assert [i.id for i in v1.setup_intents.list(
        params={"customer": text(mine.customer)}).data] == [setup.id]
    assert v1.setup_intents.list(params={"customer": text(other.customer)}).data == []
    kinds = {e.type for e in v1.events.list(params={"type": "charge.refunded"}).data}
    assert kinds == {"charge.refunded"}


def test_list_endpoints_filter_by_created_and_page_through_everything(env: Stack) -> None:
    first = paid_intent(env.client)
    later = [paid_intent(env.client) for _ in range(3)]
    since = max(i.created for i in later)
    v1 = env.client.v1
    listed = [p.id for p in v1.payment_intents.list(
        params={"created": {"gte": first.created}, "limit": 1}).auto_paging_iter()]
    assert {first.id, *(i.id for i in later)} <= set(listed)
    assert len(listed) == len(set(listed))
    newest = {p.id for p in v1.payment_intents.list(
        params={"created": {"gt": since}, "limit": 100}).auto_paging_iter()}
    assert not newest & {first.id, *(i.id for i in later)}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        v1.payment_intents.list(params={"created": {"after": 1}})  # type: ignore[arg-type]
    assert caught.value.param == "created[after]"


def test_refund_larger_than_the_remainder_is_rejected(env: Stack) -> None:
    intent = paid_intent(env.client)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        env.client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 5000})
    assert caught.value.param == "amount"
    assert env.client.v1.charges.retrieve(text(intent.latest_charge)).amount_refunded == 0


def test_setup_intent_attaches_the_card_and_detach_removes_it(env: Stack) -> None:
    customer = new_customer(env.client)
    params: Any = {"customer": customer.id, "payment_method_types": ["card"]}
    setup = env.client.v1.setup_intents.create(params=params)
    assert setup.status == "requires_payment_method" and setup.client_secret
    setup = env.client.v1.setup_intents.confirm(setup.id,
                                                params={"payment_method": "pm_card_mastercard"})
    assert setup.status == "succeeded"
    pm_id = text(setup.payment_method)
    cards = env.client.v1.payment_methods.list(params={"customer": customer.id, "type": "card"})
    assert [(p.id, p.card and p.card.brand, p.card and p.card.last4) for p in cards.data] == [
        (pm_id, "mastercard", "4444")]
    attached = verified(env, env.receiver.wait_for(about(pm_id, "payment_method.attached"))[0])
    assert attached.data.object.customer == customer.id
    env.receiver.wait_for(about(setup.id, "setup_intent.succeeded"))
    updated = env.client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": pm_id}})
    assert updated.invoice_settings is not None
    assert updated.invoice_settings.default_payment_method == pm_id

    detached = env.client.v1.payment_methods.detach(pm_id)
    assert detached.customer is None
    event = verified(env, env.receiver.wait_for(about(pm_id, "payment_method.detached"))[0])
    assert event.data.previous_attributes is not None
    assert event.data.previous_attributes.customer == customer.id
    assert env.client.v1.payment_methods.list(
        params={"customer": customer.id, "type": "card"}).data == []


def test_card_that_declines_on_setup_is_not_attached(env: Stack) -> None:
    customer = new_customer(env.client)
    with pytest.raises(stripe.CardError) as caught:
        env.client.v1.setup_intents.create(params={
            "customer": customer.id, "payment_method": "pm_card_visa_chargeDeclined",
            "confirm": True})
    assert caught.value.code == "card_declined"
    assert env.client.v1.customers.payment_methods.list(customer.id).data == []


def test_canceling_an_open_intent_emits_canceled_and_succeeded_cannot_be(env: Stack) -> None:
    open_intent = env.client.v1.payment_intents.create(params={"amount": 4900,
                                                                "currency": "thb"})
    canceled = env.client.v1.payment_intents.cancel(open_intent.id)
    assert canceled.status == "canceled"
    env.receiver.wait_for(about(open_intent.id, "payment_intent.canceled"))
    with pytest.raises(stripe.InvalidRequestError) as caught:
        env.client.v1.payment_intents.cancel(paid_intent(env.client).id)
    assert caught.value.code == "payment_intent_unexpected_state"


def test_duplicate_mode_delivers_each_event_several_times(env: Stack) -> None:
    env.control.configure_delivery(duplicates=3)
    customer = new_customer(env.client)
    copies = env.receiver.wait_for(about(customer.id, "customer.created"), count=3)
    assert len({verified(env, d).id for d in copies}) == 1


def test_held_events_are_released_in_the_requested_order(env: Stack) -> None:
    env.control.configure_delivery(hold=True)
    ids = [new_customer(env.client).id for _ in range(3)]
    held = env.control.held()
    assert len(held) == 3 and env.receiver.matching(lambda e: True) == []
    released = env.control.release(order="reverse")
    assert released == list(reversed(held))
    got = env.receiver.wait_for(lambda e: e["type"] == "customer.created", count=3)
    assert [d.event["data"]["object"]["id"] for d in got] == list(reversed(ids))
    assert [d.event["id"] for d in got] == released


def test_held_events_can_be_shuffled_with_a_seed_or_released_selectively(env: Stack) -> None:
    env.control.configure_delivery(hold=True)
    for _ in range(4):
        new_customer(env.client)
    held = env.control.held()
    first = env.control.release(event_ids=[held[2]])
    assert first == [held[2]] and env.control.held() == [e for e in held if e != held[2]]
    remaining = env.control.held()
    released = env.control.release(order="shuffle", seed=7)
    expected = list(remaining)
    random.Random(7).shuffle(expected)
    assert released == expected
    got = env.receiver.wait_for(lambda e: e["type"] == "customer.created", count=4)
    assert [d.event["id"] for d in got] == [held[2], *expected]


def test_delay_mode_postpones_delivery(env: Stack) -> None:
    env.control.configure_delivery(delay=0.4)
    started = time.monotonic()
    customer = new_customer(env.client)
    (delivery,) = env.receiver.wait_for(about(customer.id, "customer.created"))
    assert delivery.at - started >= 0.4


def test_updating_a_card_emits_payment_method_updated_with_previous_values(env: Stack) -> None:
    customer = new_customer(env.client)
    pm = env.client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    assert pm.card is not None and pm.id.startswith("pm_") and pm.customer == customer.id
    old_year = pm.card.exp_year
    updated = env.client.v1.payment_methods.update(pm.id, params={"card": {
        "exp_year": old_year + 2}})
    assert updated.card is not None and updated.card.exp_year == old_year + 2
    event = verified(env, env.receiver.wait_for(about(pm.id, "payment_method.updated"))[0])
    assert event.data.previous_attributes is not None
    assert event.data.previous_attributes.to_dict() == {"card": {"exp_year": old_year}}


def test_rotated_secret_signs_with_both_secrets_until_the_old_expires(env: Stack) -> None:
    new_secret = env.control.rotate_secret(expire_previous_after=3600)
    first = new_customer(env.client)
    delivery = env.receiver.wait_for(about(first.id, "customer.created"))[0]
    assert delivery.signature.count("v1=") == 2
    assert verified(env, delivery, SECRET).id == verified(env, delivery, new_secret).id

    env.control.rotate_secret(expire_previous_after=0, secret="whsec_third")
    second = new_customer(env.client)
    only_new = env.receiver.wait_for(about(second.id, "customer.created"))[0]
    assert only_new.signature.count("v1=") == 1
    verified(env, only_new, "whsec_third")
    with pytest.raises(stripe.SignatureVerificationError):
        verified(env, only_new, SECRET)


def test_failed_deliveries_are_retried_until_accepted(env: Stack) -> None:
    env.receiver.failures["customer.created"] = 2
    customer = new_customer(env.client)
    env.receiver.wait_for(about(customer.id, "customer.created"), count=3)
    assert env.control.wait_quiet()
    [logged] = [e for e in env.control.events("customer.created")
                if e["object_id"] == customer.id]
    assert [a["status"] for a in logged["attempts"]] == [500, 500, 200]
    assert logged["delivered"] is True


def test_retries_stop_after_max_retries(env: Stack) -> None:
    env.receiver.failures["customer.created"] = 100
    customer = new_customer(env.client)
    assert env.control.wait_quiet(timeout=5)
    [logged] = [e for e in env.control.events("customer.created")
                if e["object_id"] == customer.id]
    assert len(logged["attempts"]) == 4  # the first attempt plus max_retries=3
    assert logged["delivered"] is False


def test_disputes_open_and_close_as_lost_or_won(env: Stack) -> None:
    lost_charge = text(paid_intent(env.client).latest_charge)
    won_charge = text(paid_intent(env.client).latest_charge)
    lost = env.control.open_dispute(lost_charge)
    won = env.control.open_dispute(won_charge, reason="product_not_received")
    assert env.client.v1.charges.retrieve(lost_charge).disputed is True
    env.control.close_dispute(lost["id"], "lost")
    env.control.close_dispute(won["id"], "won")
    created = verified(env, env.receiver.wait_for(about(lost["id"],
                                                        "charge.dispute.created"))[0])
    assert (created.data.object.charge, created.data.object.status) == (lost_charge,
                                                                        "needs_response")
    closed = {d.event["data"]["object"]["id"]: verified(env, d).data.object.status
              for d in env.receiver.wait_for(lambda e: e["type"] == "charge.dispute.closed"
                                             and e["data"]["object"]["charge"]
                                             in (lost_charge, won_charge), count=2)}
    assert closed == {lost["id"]: "lost", won["id"]: "won"}
    with pytest.raises(stripe.InvalidRequestError):
        env.client.v1.refunds.create(params={"charge": lost_charge})


def test_requests_without_the_api_key_are_rejected(env: Stack) -> None:
    wrong = stripe.StripeClient("sk_test_wrong", base_addresses={"api": env.url})
    with pytest.raises(stripe.AuthenticationError):
        wrong.v1.customers.list()
    assert httpx.get(env.url + "/v1/customers").status_code == 401
    assert httpx.get(env.url + "/_standin/status").status_code == 401


def test_signature_helper_matches_stripe_verification() -> None:
    payload = '{"id": "evt_1", "object": "event"}'
    now = int(time.time())
    header = signature_header(payload, [SECRET, "whsec_other"], timestamp=now)
    assert stripe.WebhookSignature.verify_header(payload, header, "whsec_other", 300)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(payload, signature_header(
            payload, SECRET, timestamp=now - 301), SECRET, 300)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(payload.replace(" ", ""), header, SECRET, 300)


def test_form_decoding_follows_stripe_bracket_encoding() -> None:
    decoded = decode([("metadata[0]", "x"), ("expand[0]", "a"), ("expand[1]", "b"),
                      ("automatic_payment_methods[enabled]", "true"), ("list[]", "p"),
                      ("list[]", "q"), ("amount", "4900")])
    assert decoded == {"metadata": {"0": "x"}, "expand": ["a", "b"],
                       "automatic_payment_methods": {"enabled": "true"}, "list": ["p", "q"],
                       "amount": "4900"}
