"""The app's side of the account tests, through the function URLs: sign in with a provider
token it keeps (to sign in again after the deletion), buy stars, save a card, ask a question."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from tests.money.stack import CUSTOM_ISSUER, CUSTOM_SECRET, MoneyStack, User


@dataclass
class AppUser(User):
    provider_token: str
    email: str
    name: str
    subject: str


def provider_token(subject: str, email: str, name: str) -> str:
    now = int(time.time())
    return jwt.encode({"iss": CUSTOM_ISSUER, "aud": "mimivibe", "sub": subject, "iat": now,
                       "exp": now + 600, "name": name, "email": email, "email_verified": True},
                      CUSTOM_SECRET, algorithm="HS256")


def session(stack: MoneyStack, token: str) -> dict[str, Any]:
    response = stack.http.post(f"{stack.functions_url}/session",
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return dict(response.json())


def sign_in(stack: MoneyStack) -> AppUser:
    tag = secrets.token_hex(5)
    subject, email, name = f"subject{tag}", f"mail{tag}@example.com", f"Name{tag}"
    token = provider_token(subject, email, name)
    body = session(stack, token)
    return AppUser(body["user"]["id"], body["access_token"], token, email, name, subject)


def buy(stack: MoneyStack, user: User, package: str = "basic", *, confirm: bool = True
        ) -> dict[str, Any]:
    response = stack.call("purchase", user, key=str(uuid.uuid4()), json={"package": package})
    assert response.status_code == 201, response.text
    body = dict(response.json())
    if confirm:
        stack.stripe.v1.payment_intents.confirm(body["payment_intent_id"],
                                                {"payment_method": "pm_card_visa"})
        stack.wait_for(lambda: stack.rest(
            "GET", f"payments?id=eq.{body['payment_id']}&status=eq.succeeded", user).json())
    return body


def save_card(stack: MoneyStack, user: User) -> str:
    setup = stack.call("payment-methods", user, path="/setup", key=str(uuid.uuid4()))
    assert setup.status_code == 201, setup.text
    intent = stack.stripe.v1.setup_intents.confirm(setup.json()["setup_intent_id"],
                                                   {"payment_method": "pm_card_visa"})
    pm = str(intent.payment_method)
    stack.wait_for(lambda: stack.rest(
        "GET", f"user_payment_methods?stripe_payment_method_id=eq.{pm}", user).json())
    return pm


def ask(stack: MoneyStack, user: User, question: str) -> Any:
    return stack.call("create-reading", user, key=str(uuid.uuid4()),
                      json={"question": question, "card_count": 3, "locale": "en"})


def delete_account(stack: MoneyStack, user: User, body: Any = None) -> Any:
    confirm = {"confirm": "delete my account"} if body is None else body
    return stack.call("account", user, method="DELETE", json=confirm)
