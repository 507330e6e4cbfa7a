"""The product's main job, end to end on the local stack: `make journey`.

Uses a running stack (`.local/stack.json`, from `make dev`) or starts one and stops it after.
A user signs in with the local identity provider, reads and edits their profile through the REST
gateway, buys stars (a saved card, a PromptPay QR code, a card asking for 3-D Secure), sees a
dispute hold stars and release them, asks the tarot a question and gets the reading; a second
user redeems the first user's invite code and buys, which earns the inviter coins.

The PromptPay, 3-D Secure and dispute steps play the customer's and the bank's part through the
Stripe stand-in's controls; against Stripe's test mode they print what to do in the Dashboard.

Each step is a small function added to STEPS. A step runs once the functions it calls have a
handler in functions/; until then it is listed as waiting for them.
"""

from __future__ import annotations

import io
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import segno

from devstack.logs import to_file
from devstack.stack import DEFAULT_ROOT, PROJECT_ROOT, LocalStack, read_stack_file
from devstack.stripe_standin.client import StandinControl

POLL_SECONDS = 0.5


def emit(text: str) -> None:
    """One write per line, so an invocation line from a server thread never splits it."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class StepFailed(Exception):
    pass


@dataclass
class Journey:
    info: dict[str, Any]
    client: httpx.Client
    state: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str) -> None:
        emit(f"    {text}")

    def expect(self, response: httpx.Response, *statuses: int) -> Any:
        if response.status_code not in statuses:
            raise StepFailed(f"{response.request.method} {response.request.url} answered "
                             f"{response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def function(self, name: str, path: str = "", *, token: str | None = None,
                 idempotency_key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["authorization"] = f"Bearer {token}"
        if idempotency_key:
            headers["idempotency-key"] = idempotency_key
        method = kwargs.pop("method", "POST")
        return self.client.request(method, f"{self.info['urls']['functions']}/{name}{path}",
                                   headers=headers, **kwargs)

    def rest(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"apikey": self.info["anon_key"], "authorization": f"Bearer {token}",
                   **kwargs.pop("headers", {})}
        return self.client.request(method, f"{self.info['urls']['rest']}/{path}",
                                   headers=headers, **kwargs)

    def rpc(self, name: str, token: str, body: dict[str, Any] | None = None) -> Any:
        return self.expect(self.rest("POST", f"rpc/{name}", token, json=body or {}), 200)

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(POLL_SECONDS)
        raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what}")

    def me(self, user: str) -> dict[str, Any]:
        rows = self.expect(self.rest("GET", "users?select=*", self.state[user]["token"]), 200)
        if len(rows) != 1:
            raise StepFailed(f"expected exactly the own row, got {len(rows)}")
        if rows[0]["id"] != self.state[user]["user"]["id"]:
            raise StepFailed(f"REST /users returned {rows[0]['id']}, not the signed-in user")
        return dict(rows[0])


# -- steps --------------------------------------------------------------------------------
def sign_in(journey: Journey, user: str, name: str) -> None:
    identity = journey.info["identity"]
    subject = f"journey-{user}-{uuid.uuid4().hex[:8]}"
    claims = {"sub": subject, "email": f"{subject}@example.com", "email_verified": True,
              "name": name}
    id_token = journey.expect(journey.client.post(identity["token_url"], json=claims),
                              200)["id_token"]
    journey.say(f"identity provider issued an RS256 token for {subject}")
    session = journey.expect(journey.function("session", token=id_token, json={}), 200)
    journey.state[user] = {"token": session["access_token"], "user": session["user"]}
    me = session["user"]
    journey.say(f"session: user {me['id']} ({me['name']}), {me['star_balance']} stars, "
                f"{me['coin_balance']} coins, invite code {me['invite_code']}")


def sign_in_first_user(journey: Journey) -> None:
    sign_in(journey, "first", "มิมิ ผู้ทดลอง")


def read_and_edit_profile(journey: Journey) -> None:
    me = journey.me("first")
    journey.say(f"REST /users returns only the own row: {me['id']}")
    token = journey.state["first"]["token"]
    journey.expect(journey.rest("PATCH", f"users?id=eq.{me['id']}", token,
                                json={"name": "Mimi (journey)"}), 200, 204)
    forbidden = journey.rest("PATCH", f"users?id=eq.{me['id']}", token,
                             json={"star_balance": 1000})
    if forbidden.status_code < 400:
        raise StepFailed("a user could set their own star balance")
    journey.say(f"renamed to {journey.me('first')['name']!r}; setting a balance is refused "
                f"({forbidden.status_code})")


def buy(journey: Journey, user: str, package: str = "starter") -> int:
    token = journey.state[user]["token"]
    before = journey.me(user)["star_balance"]
    payment = journey.expect(journey.function(
        "purchase", token=token, idempotency_key=str(uuid.uuid4()),
        json={"package": package, "payment_method_id": "pm_card_visa"}), 201)
    journey.say(f"purchase: {payment['payment_intent_id']} for {payment['amount'] / 100:.2f} "
                f"THB, {payment['stars_total']} stars once paid")
    after = journey.wait_for(
        "the stars to arrive",
        lambda: (b := journey.me(user)["star_balance"]) >= before + payment["stars_total"] and b)
    journey.say(f"webhook applied: star balance {before} -> {after}")
    summary = journey.rpc("wallet_summary", token)
    journey.say(f"wallet_summary: {summary['star_balance']} stars, {summary['coin_balance']} "
                f"coins, tier {summary['tier']}")
    return int(after)


def buy_stars(journey: Journey) -> None:
    buy(journey, "first")


def standin(journey: Journey) -> StandinControl | None:
    """The Stripe stand-in's controls, or None when the stack uses Stripe's test mode."""
    stripe = journey.info.get("stripe") or {}
    if not stripe.get("url") or not stripe.get("api_key"):
        return None
    return StandinControl(stripe["url"], stripe["api_key"])


def pay_with_promptpay(journey: Journey) -> None:
    token = journey.state["first"]["token"]
    before = journey.me("first")["star_balance"]
    payment = journey.expect(journey.function(
        "purchase", token=token, idempotency_key=str(uuid.uuid4()),
        json={"package": "basic", "payment_method_type": "promptpay"}), 201)
    code = payment["promptpay"]
    journey.say(f"purchase: {payment['payment_intent_id']} is {payment['status']}; scan to pay "
                f"{payment['amount'] / 100:.2f} THB before {code['expires_at']} (unix time)")
    journey.say(f"hosted instructions: {code['hosted_instructions_url']}")
    qr = io.StringIO()
    segno.make(code["qr_data"], error="m").terminal(out=qr, compact=True)
    for line in qr.getvalue().splitlines():
        journey.say(line)
    control = standin(journey)
    if control is None:
        journey.say("Stripe test mode: open the hosted instructions and authorize the test "
                    "payment; the webhook credits the stars")
        return
    with control:
        control.settle_promptpay(payment["payment_intent_id"], "pay")
    journey.say("the customer paid the QR code from a banking app (stand-in control)")
    after = journey.wait_for(
        "the stars to arrive",
        lambda: (b := journey.me("first")["star_balance"]) >= before + payment["stars_total"]
        and b)
    journey.say(f"webhook applied: star balance {before} -> {after}")


def pay_with_3d_secure(journey: Journey) -> None:
    token = journey.state["first"]["token"]
    before = journey.me("first")["star_balance"]
    payment = journey.expect(journey.function(
        "purchase", token=token, idempotency_key=str(uuid.uuid4()),
        json={"package": "starter", "payment_method_id": "pm_card_threeDSecure2Required"}), 201)
    journey.say(f"purchase: {payment['payment_intent_id']} is {payment['status']}, next action "
                f"{payment['next_action']['type']} (the app finishes it with the Stripe SDK)")
    control = standin(journey)
    if control is None:
        journey.say("Stripe test mode: the app's SDK shows the challenge; no stars until then")
        return
    with control:
        control.authenticate(payment["payment_intent_id"], "complete")
    journey.say("the customer completed the 3-D Secure challenge (stand-in control)")
    after = journey.wait_for(
        "the stars to arrive",
        lambda: (b := journey.me("first")["star_balance"]) >= before + payment["stars_total"]
        and b)
    journey.state["3ds_payment"] = payment
    journey.say(f"webhook applied: star balance {before} -> {after}")


def dispute_holds_and_releases(journey: Journey) -> None:
    control = standin(journey)
    payment = journey.state.get("3ds_payment")
    if control is None or payment is None:
        journey.say("Stripe test mode: pay with pm_card_createDispute to see a dispute open")
        return
    token = journey.state["first"]["token"]
    with control:
        stripe = journey.info["stripe"]
        intent = journey.expect(journey.client.get(
            f"{stripe['url']}/v1/payment_intents/{payment['payment_intent_id']}",
            headers={"authorization": f"Bearer {stripe['api_key']}"}), 200)
        charge = intent["latest_charge"]
        dispute = control.open_dispute(charge)
        journey.say(f"dispute {dispute['id']} opened on {charge} ({dispute['reason']})")
        held = journey.wait_for("the stars to be held",
                                lambda: (w := journey.rpc("wallet_summary", token))
                                ["held_stars"] and w)
        journey.say(f"wallet_summary: {held['star_balance']} stars to spend, "
                    f"{held['held_stars']} held")
        control.close_dispute(dispute["id"], "won")
    released = journey.wait_for("the stars to be released",
                                lambda: (w := journey.rpc("wallet_summary", token))
                                ["held_stars"] == 0 and w)
    journey.say(f"dispute won: {released['star_balance']} stars to spend, "
                f"{released['held_stars']} held")


def ask_a_question(journey: Journey) -> None:
    token = journey.state["first"]["token"]
    job = journey.expect(journey.function(
        "create-reading", token=token, idempotency_key=str(uuid.uuid4()),
        json={"question": "งานใหม่ที่สมัครไว้จะได้ไหม", "card_count": 3, "locale": "th"}), 202)
    cards = ", ".join(f"{c['name']} ({c['orientation']})" for c in job["cards"])
    journey.say(f"job {job['job_id']} queued for {job['cost_stars']} star(s): {cards}")

    def finished() -> Any:
        rows = journey.rpc("reading_status", token, {"job_id": job["job_id"]})
        row = rows[0] if isinstance(rows, list) and rows else rows
        return row if row and row.get("status") in ("succeeded", "dlq") else None

    status = journey.wait_for("the reading", finished, timeout=90)
    if status["status"] != "succeeded":
        raise StepFailed(f"the job ended {status['status']}: {status.get('last_error')}")
    reading = status.get("reading") or {}
    journey.state["reading"] = reading
    journey.say(f"reading {status['reading_id']} after {status['attempts']} attempt(s):")
    for card in (reading.get("tarot_reading") or {}).get("cards", []):
        journey.say(f"  {card['position_name']}: {card['name']} ({card['orientation']}): "
                    f"{card['interpretation']}")
    journey.say(f"  summary: {reading.get('summary')}")
    journey.say(f"  advice: {reading.get('advice')}")


def find_the_reading(journey: Journey) -> None:
    token = journey.state["first"]["token"]
    reading = journey.state["reading"]
    rows = journey.expect(journey.rest("GET", "tarot_readings?select=id,question", token), 200)
    if reading["id"] not in [r["id"] for r in rows]:
        raise StepFailed("the reading is not visible over REST")
    found = journey.rpc("search_readings", token, {"query": "งาน"})
    if reading["id"] not in [r["id"] for r in found]:
        raise StepFailed("searching for งาน did not find the reading")
    journey.say(f"REST shows {len(rows)} reading(s); search for งาน finds "
                f"{found[0]['question']!r}")


def invite_a_friend(journey: Journey) -> None:
    code = journey.state["first"]["user"]["invite_code"]
    coins_before = journey.me("first")["coin_balance"]
    sign_in(journey, "second", "Friend of Mimi")
    invite = journey.expect(journey.function(
        "redeem-invite", token=journey.state["second"]["token"], json={"invite_code": code}), 200)
    journey.say(f"second user redeemed {code}: invite {invite['invite_id']} is {invite['status']}")
    buy(journey, "second")
    coins = journey.wait_for(
        "the inviter's reward",
        lambda: (c := journey.me("first")["coin_balance"]) > coins_before and c)
    journey.say(f"inviter's coins {coins_before} -> {coins}")


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[Journey], None]


STEPS = [
    Step("Sign in with the local identity provider", sign_in_first_user),
    Step("Read and edit the profile over REST", read_and_edit_profile),
    Step("Buy a star package", buy_stars),
    Step("Pay with a PromptPay QR code", pay_with_promptpay),
    Step("Pay with a card that asks for 3-D Secure", pay_with_3d_secure),
    Step("A dispute holds stars until it is won", dispute_holds_and_releases),
    Step("Ask the tarot a question", ask_a_question),
    Step("Find the reading over REST and by search", find_the_reading),
    Step("A friend redeems the invite code and buys", invite_a_friend),
]


def run(info: dict[str, Any], steps: list[Step] = STEPS) -> bool:
    """Run the steps in order; stop at the first failure. True when every step passed."""
    with httpx.Client(timeout=30) as client:
        journey = Journey(info, client)
        for number, step in enumerate(steps, start=1):
            emit(f"[{number}] {step.title}")
            started = time.monotonic()
            try:
                step.run(journey)
            except (StepFailed, httpx.HTTPError, KeyError) as exc:
                emit(f"    FAILED: {type(exc).__name__}: {exc}")
                return False
            emit(f"    ok ({time.monotonic() - started:.1f} s)")
    return True


def main() -> int:
    info = read_stack_file(DEFAULT_ROOT)
    if info is not None:
        emit(f"Using the running local stack ({DEFAULT_ROOT / 'stack.json'}); the functions' "
              "logs stream where it runs (`make dev`)\n")
        return 0 if run(info) else 1
    log_file = DEFAULT_ROOT / "journey.log"
    emit(f"Starting the local stack (stopped again at the end). Its logs, the functions' JSON "
          f"logs and metrics: {_shown(log_file)}\n")
    with to_file(log_file), LocalStack() as stack:
        emit(f"Functions at {stack.info['urls']['functions']}, "
              f"REST at {stack.info['urls'].get('rest')}\n")
        ok = run(stack.info)
    emit("\nJourney " + ("complete" if ok else f"FAILED (logs: {_shown(log_file)})"))
    return 0 if ok else 1


def _shown(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


if __name__ == "__main__":
    sys.exit(main())
