"""`StandinControl`: a small synchronous client of the `/_standin` controls, for tests and the
stack runner in another process (in-process tests may use `app.state.standin` directly)."""

from __future__ import annotations

import time
from typing import Any

import httpx


class StandinControl:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 15.0) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/_standin",
                                  headers={"Authorization": f"Bearer {api_key}"},
                                  timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StandinControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              params: dict[str, str] | None = None) -> Any:
        response = self._http.request(method, path, json=body, params=params)
        response.raise_for_status()
        return response.json()

    def set_webhook(self, url: str | None, secret: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/webhook", {"url": url, "secret": secret})

    def rotate_secret(self, expire_previous_after: float = 86400.0,
                      secret: str | None = None) -> str:
        body = {"expire_previous_after": expire_previous_after, "secret": secret}
        return str(self._call("POST", "/webhook/rotate", body)["secret"])

    def configure_delivery(self, duplicates: int = 1, delay: float = 0.0,
                           hold: bool = False) -> dict[str, Any]:
        return self._call("POST", "/delivery",
                          {"duplicates": duplicates, "delay": delay, "hold": hold})

    def held(self) -> list[str]:
        return list(self._call("GET", "/events/held")["event_ids"])

    def release(self, event_ids: list[str] | None = None, order: str = "as_created",
                seed: int | None = None) -> list[str]:
        body = {"event_ids": event_ids, "order": order, "seed": seed}
        return list(self._call("POST", "/events/release", body)["released"])

    def resend(self, event_id: str, times: int = 1) -> None:
        self._call("POST", f"/events/{event_id}/resend", {"times": times})

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        params = {"type": type_} if type_ else None
        return list(self._call("GET", "/events", params=params)["data"])

    def status(self) -> dict[str, Any]:
        return dict(self._call("GET", "/status"))

    def wait_quiet(self, timeout: float = 10.0) -> bool:
        return bool(self._call("POST", "/wait", {"timeout": timeout})["quiet"])

    def wait_for_event(self, type_: str, object_id: str | None = None,
                       timeout: float = 10.0) -> dict[str, Any]:
        """The first event of `type_` (for `object_id`, if given) once it has been delivered."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events(type_):
                if event["delivered"] and object_id in (None, event["object_id"]):
                    return event
            if time.monotonic() > deadline:
                raise TimeoutError(f"no delivered {type_} event within {timeout}s")
            time.sleep(0.05)

    def open_dispute(self, charge_id: str, reason: str = "fraudulent",
                     amount: int | None = None) -> dict[str, Any]:
        return dict(self._call("POST", f"/charges/{charge_id}/dispute",
                               {"reason": reason, "amount": amount}))

    def close_dispute(self, dispute_id: str, status: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/disputes/{dispute_id}/close", {"status": status}))

    def authenticate(self, intent_id: str, outcome: str = "complete") -> dict[str, Any]:
        """Finish the 3-D Secure challenge of a PaymentIntent or a SetupIntent as the customer:
        `complete` or `fail`."""
        kind = "setup_intents" if intent_id.startswith("seti_") else "payment_intents"
        return dict(self._call("POST", f"/{kind}/{intent_id}/authenticate",
                               {"outcome": outcome}))

    def settle_promptpay(self, payment_intent_id: str, outcome: str = "pay") -> dict[str, Any]:
        """Pay a PromptPay QR code from a banking app (`pay`), or let it expire (`expire`)."""
        return dict(self._call("POST", f"/payment_intents/{payment_intent_id}/promptpay",
                               {"outcome": outcome}))

    def move_refund(self, refund_id: str, status: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/refunds/{refund_id}", {"status": status}))

    def set_refund_start(self, status: str | None) -> None:
        self._call("POST", "/refunds/start", {"status": status})
