"""Stripe's test-mode payment method tokens (`pm_card_*`) and how each behaves.

Real Stripe turns each token into a fresh `pm_...` object on use; the stand-in does the same and
remembers which test card a payment method came from to decide charge and attach outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TestCard:
    brand: str
    last4: str
    funding: str = "credit"
    country: str = "US"
    # When set, charges are declined with this decline code (and `error_code`).
    decline_code: str | None = None
    error_code: str = "card_declined"
    # Stripe's plain decline cards also fail when attached or set up; 0341 only fails charges.
    decline_on_attach: bool = False
    # 0259: the charge succeeds, then the cardholder disputes it.
    dispute: bool = False
    # 3-D Secure: "required" asks on every payment (off-session too, where it is a decline);
    # "on_session" asks when the customer is present, not for off-session payments of a saved
    # card; "frictionless" authenticates without a challenge; None: the card never asks.
    authentication: str | None = None


_GENERIC = TestCard("visa", "0002", decline_code="generic_decline", decline_on_attach=True)
_FUNDS = TestCard("visa", "9995", decline_code="insufficient_funds", decline_on_attach=True)
_EXPIRED = TestCard("visa", "0069", decline_code="expired_card", error_code="expired_card",
                    decline_on_attach=True)

TEST_CARDS: dict[str, TestCard] = {
    "pm_card_visa": TestCard("visa", "4242"),
    "pm_card_visa_debit": TestCard("visa", "5556", funding="debit"),
    "pm_card_mastercard": TestCard("mastercard", "4444"),
    "pm_card_mastercard_debit": TestCard("mastercard", "8210", funding="debit"),
    "pm_card_amex": TestCard("amex", "8431"),
    "pm_card_th": TestCard("visa", "0003", country="TH"),
    "pm_card_chargeDeclined": _GENERIC,
    "pm_card_visa_chargeDeclined": _GENERIC,
    "pm_card_chargeDeclinedInsufficientFunds": _FUNDS,
    "pm_card_visa_chargeDeclinedInsufficientFunds": _FUNDS,
    "pm_card_chargeDeclinedExpiredCard": _EXPIRED,
    "pm_card_visa_chargeDeclinedExpiredCard": _EXPIRED,
    "pm_card_chargeCustomerFail": TestCard("visa", "0341", decline_code="generic_decline"),
    "pm_card_createDispute": TestCard("visa", "0259", dispute=True),
    # Stripe's documented 3-D Secure test cards.
    "pm_card_threeDSecure2Required": TestCard("visa", "3220", authentication="required"),
    "pm_card_threeDSecureRequired": TestCard("visa", "3063", authentication="required"),
    "pm_card_threeDSecureOptional": TestCard("visa", "3055", authentication="frictionless"),
    "pm_card_authenticationRequired": TestCard("visa", "3184", authentication="required"),
    "pm_card_authenticationRequiredOnSetup": TestCard("visa", "3155",
                                                      authentication="on_session"),
    "pm_card_authenticationRequiredChargeDeclinedInsufficientFunds": TestCard(
        "visa", "3178", decline_code="insufficient_funds", authentication="required"),
}

DECLINE_MESSAGES: dict[str, str] = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "authentication_required": "Your card was declined. This transaction requires "
                               "authentication.",
}
