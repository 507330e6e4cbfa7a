"""Saved cards kept in step with payment_method.* events (brand, last4, expiry, default,
active), whatever order they arrive in."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.money.conftest import apply_event, make_user
from tests.money.events import card, event, new_id


def customer_of(db, user_id) -> str:
    customer = new_id("cus")
    db.execute("insert into public.stripe_customers (user_id, stripe_customer_id) values (%s, %s)",
               (user_id, customer))
    return customer


def cards(db, user_id):
    return {r["stripe_payment_method_id"]: r for r in db.execute(
        "select * from public.user_payment_methods where user_id = %s", (user_id,)).fetchall()}


def test_an_attached_card_is_saved_and_the_first_becomes_the_default(db):
    user = make_user(db)
    customer = customer_of(db, user)
    first, second = card(customer, last4="4242"), card(customer, last4="4444")
    assert apply_event(db, event("payment_method.attached", first))["result"] == "card_saved"
    apply_event(db, event("payment_method.attached", second))

    saved = cards(db, user)
    assert (saved[first["id"]]["brand"], saved[first["id"]]["last4"],
            saved[first["id"]]["exp_month"], saved[first["id"]]["exp_year"]) == (
        "visa", "4242", 7, 2031)
    assert saved[first["id"]]["is_default"] and saved[first["id"]]["is_active"]
    assert not saved[second["id"]]["is_default"] and saved[second["id"]]["is_active"]


def test_an_update_changes_the_expiry(db):
    user = make_user(db)
    customer = customer_of(db, user)
    pm = card(customer)
    apply_event(db, event("payment_method.attached", pm))
    apply_event(db, event("payment_method.updated", card(customer, pm["id"], exp_year=2033),
                          {"card": {"exp_year": 2031}}))
    assert cards(db, user)[pm["id"]]["exp_year"] == 2033


def test_detaching_the_default_promotes_another_card(db):
    user = make_user(db)
    customer = customer_of(db, user)
    first, second = card(customer), card(customer)
    apply_event(db, event("payment_method.attached", first))
    apply_event(db, event("payment_method.attached", second))
    result = apply_event(db, event("payment_method.detached", card(None, first["id"]),
                                   {"customer": customer}))
    assert result["result"] == "card_detached"
    saved = cards(db, user)
    assert not saved[first["id"]]["is_active"] and not saved[first["id"]]["is_default"]
    assert saved[second["id"]]["is_default"]


def test_a_detach_that_overtakes_the_attach_keeps_the_card_inactive(db):
    user = make_user(db)
    customer = customer_of(db, user)
    pm = card(customer)
    apply_event(db, event("payment_method.detached", card(None, pm["id"]), {"customer": customer}))
    apply_event(db, event("payment_method.attached", pm))
    apply_event(db, event("payment_method.updated", pm, {"card": {"exp_year": 2030}}))
    saved = cards(db, user)[pm["id"]]
    assert (saved["is_active"], saved["is_default"]) == (False, False)


def test_cards_of_unknown_customers_are_ignored(db):
    stray = card(new_id("cus"))
    result = apply_event(db, event("payment_method.attached", stray))
    assert result == {"duplicate": False, "result": "unknown_customer",
                      "stars_credited": 0, "stars_clawed_back": 0}
    assert db.execute("select count(*) as n from public.user_payment_methods"
                      " where stripe_payment_method_id = %s", (stray["id"],)).fetchone()["n"] == 0


def test_set_default_payment_method_is_limited_to_the_callers_active_cards(db):
    owner, other = make_user(db), make_user(db)
    customer = customer_of(db, owner)
    first, second = card(customer), card(customer)
    apply_event(db, event("payment_method.attached", first))
    apply_event(db, event("payment_method.attached", second))
    second_id = cards(db, owner)[second["id"]]["id"]

    def as_user(user_id, method_id):
        with db.transaction():
            db.execute("set local role authenticated")
            db.execute("select set_config('request.jwt.claims', %s, true)",
                       (f'{{"sub": "{user_id}", "role": "authenticated"}}',))
            return db.execute("select public.set_default_payment_method(%s) as r",
                              (method_id,)).fetchone()["r"]

    assert as_user(owner, second_id)["is_default"] is True
    saved = cards(db, owner)
    assert saved[second["id"]]["is_default"] and not saved[first["id"]]["is_default"]
    for user_id, method_id in ((other, second_id), (owner, uuid.uuid4())):
        with pytest.raises(psycopg.DatabaseError) as caught:
            as_user(user_id, method_id)
        assert caught.value.sqlstate == "MV005"
