"""PostgreSQL stopped: every function answers 503 service_unavailable with Retry-After, at
once and with nothing half-written; Stripe's retries of the webhooks it could not deliver are
applied once when PostgreSQL is back."""

from __future__ import annotations

import uuid

from tests.faults.stack import BOUNDED_SECONDS, FaultStack, Timed, wait_for


def unavailable(timed: Timed) -> None:
    assert (timed.status, timed.error_code()) == (503, "service_unavailable"), \
        timed.response.text
    assert int(timed.response.headers["retry-after"]) >= 1
    assert timed.seconds < BOUNDED_SECONDS, f"took {timed.seconds:.2f} s"


def test_postgres_stopped_then_started(healthy: FaultStack) -> None:
    user = healthy.funded_user()
    stars = healthy.stars(user)
    payments = healthy.sql("select count(*) as n from public.payments")[0]["n"]
    stripe = healthy.stripe
    # A payment whose webhooks reach us only while PostgreSQL is down.
    stripe.configure_delivery(hold=True)
    try:
        bought = healthy.purchase(user)
        assert bought.status == 201, bought.response.text
        intent = bought.response.json()["payment_intent_id"]
        wait_for("the payment's webhooks to be held", stripe.held)
    finally:
        stripe.configure_delivery(hold=False)
    key = uuid.uuid4().hex

    with healthy.postgres_stopped():
        stripe.release()
        unavailable(healthy.session())
        unavailable(healthy.ask(user, key=key))
        unavailable(healthy.purchase(user))
        unavailable(healthy.run_consumer())
        # Every other user call too: each one's first database call is the erased-account check
        # (a table read), and the account is never taken as not erased without the database.
        unavailable(healthy.redeem(user, "NOSUCHCODE"))
        unavailable(healthy.call("payment-methods/setup", token=user.token, json={},
                                 idempotency_key=uuid.uuid4().hex))
        unavailable(healthy.call("payment-methods/pm_card_visa", token=user.token,
                                 method="DELETE"))
        unavailable(healthy.call("account/export", token=user.token, method="GET"))
        unavailable(healthy.call("account", token=user.token, method="DELETE",
                                 json={"confirm": "delete my account"}))
        # The REST gateway, asked for what its schema cache does not hold, cannot reload it.
        rest = healthy.stack.info["urls"]["rest"]
        missing = healthy.http.get(f"{rest}/no_such_table",
                                   headers={"Authorization": f"Bearer {user.token}"})
        assert (missing.status_code, missing.json()["code"]) == (503, "PGRST002"), missing.text

        def refused_by_us() -> bool:
            return any(a["status"] == 503 for e in stripe.events("payment_intent.succeeded")
                       if e["object_id"] == intent for a in e["attempts"])

        wait_for("Stripe's delivery to be refused with 503", refused_by_us)

    healthy.converge()
    # Stripe retried the webhook: the payment's stars arrived once.
    assert healthy.stars(user) == stars + 5
    assert healthy.sql("select count(*) as n from public.payments")[0]["n"] == payments + 1
    # The reading asked during the outage left nothing behind; asking again charges once.
    assert healthy.sql("select 1 from public.jobs where dedupe_key = %s",
                       (f"create-reading:{user.id}:{key}",)) == []
    again = healthy.ask(user, key=key)
    assert again.status == 202, again.response.text
    assert healthy.stars(user) == stars + 5 - 1
    # The deletion asked during the outage erased nothing.
    assert healthy.sql("select erased_at from public.users where id = %s",
                       (user.id,)) == [{"erased_at": None}]
