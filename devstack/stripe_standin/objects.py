"""Stripe object shapes (API reference field names), list envelopes and `expand[]`."""

from __future__ import annotations

import copy
import datetime
import hashlib
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from devstack.stripe_standin.cards import TestCard
from devstack.stripe_standin.errors import invalid
from devstack.stripe_standin.state import new_id, now


def client_secret(object_id: str) -> str:
    return f"{object_id}_secret_{secrets.token_hex(12)}"


def empty_address() -> dict[str, Any]:
    return {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None,
            "state": None}


def customer(params: dict[str, Any], metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": new_id("cus", 14), "object": "customer", "address": None, "balance": 0,
        "created": now(), "currency": None, "default_source": None, "delinquent": False,
        "description": params.get("description"), "email": params.get("email"),
        "invoice_prefix": secrets.token_hex(4).upper(),
        "invoice_settings": {"custom_fields": None, "default_payment_method": None,
                             "footer": None, "rendering_options": None},
        "livemode": False, "metadata": metadata, "name": params.get("name"),
        "phone": params.get("phone"), "preferred_locales": params.get("preferred_locales") or [],
        "shipping": None, "tax_exempt": "none", "test_clock": None,
    }


def card_payment_method(card: TestCard, metadata: dict[str, str]) -> dict[str, Any]:
    today = datetime.date.today()
    fingerprint = hashlib.sha256(f"{card.brand}:{card.last4}".encode()).hexdigest()[:16]
    return {
        "id": new_id("pm"), "object": "payment_method", "allow_redisplay": "unspecified",
        "billing_details": {"address": empty_address(), "email": None, "name": None,
                            "phone": None, "tax_id": None},
        "card": {
            "brand": card.brand, "checks": {"address_line1_check": None,
                                            "address_postal_code_check": None,
                                            "cvc_check": "pass"},
            "country": card.country, "display_brand": card.brand,
            "exp_month": today.month, "exp_year": today.year + 1, "fingerprint": fingerprint,
            "funding": card.funding, "generated_from": None, "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
            "regulated_status": "unregulated", "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": now(), "customer": None, "livemode": False, "metadata": metadata,
        "type": "card",
    }


def payment_intent(amount: int, currency: str, metadata: dict[str, str],
                   fields: dict[str, Any]) -> dict[str, Any]:
    pi_id = new_id("pi")
    obj: dict[str, Any] = {
        "id": pi_id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_details": {"tip": {}}, "amount_received": 0, "application": None,
        "application_fee_amount": None, "automatic_payment_methods": None,
        "canceled_at": None, "cancellation_reason": None, "capture_method": "automatic",
        "client_secret": client_secret(pi_id), "confirmation_method": "automatic",
        "created": now(), "currency": currency, "customer": None, "description": None,
        "last_payment_error": None, "latest_charge": None, "livemode": False,
        "metadata": metadata, "next_action": None, "on_behalf_of": None,
        "payment_method": None, "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"installments": None, "mandate_options": None,
                                            "network": None,
                                            "request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "processing": None, "receipt_email": None,
        "review": None, "setup_future_usage": None, "shipping": None, "source": None,
        "statement_descriptor": None, "statement_descriptor_suffix": None,
        "status": "requires_payment_method", "transfer_data": None, "transfer_group": None,
    }
    obj.update(fields)
    return obj


def payment_method_details(pm: dict[str, Any], amount: int,
                           three_d_secure: dict[str, Any] | None) -> dict[str, Any]:
    if pm["type"] == "promptpay":
        return {"promptpay": {"reference": secrets.token_hex(10)}, "type": "promptpay"}
    card = pm["card"]
    return {"card": {
        "amount_authorized": amount, "brand": card["brand"], "checks": card["checks"],
        "country": card["country"], "exp_month": card["exp_month"],
        "exp_year": card["exp_year"], "extended_authorization": {"status": "disabled"},
        "fingerprint": card["fingerprint"], "funding": card["funding"],
        "incremental_authorization": {"status": "unavailable"}, "installments": None,
        "last4": card["last4"], "mandate": None, "multicapture": {"status": "unavailable"},
        "network": card["brand"], "network_token": {"used": False},
        "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
        "three_d_secure": three_d_secure, "wallet": None}, "type": "card"}


def charge(pi: dict[str, Any], pm: dict[str, Any],
           three_d_secure: dict[str, Any] | None = None) -> dict[str, Any]:
    ch_id = new_id("ch")
    return {
        "id": ch_id, "object": "charge", "amount": pi["amount"], "amount_captured": 0,
        "amount_refunded": 0, "application": None, "application_fee": None,
        "application_fee_amount": None, "balance_transaction": None,
        "billing_details": copy.deepcopy(pm["billing_details"]), "calculated_statement_descriptor":
        "MIMIVIBE", "captured": False, "created": now(), "currency": pi["currency"],
        "customer": pi["customer"], "description": pi["description"], "disputed": False,
        "failure_balance_transaction": None, "failure_code": None, "failure_message": None,
        "fraud_details": {}, "livemode": False, "metadata": dict(pi["metadata"]),
        "on_behalf_of": None, "outcome": None, "paid": False, "payment_intent": pi["id"],
        "payment_method": pm["id"],
        "payment_method_details": payment_method_details(pm, pi["amount"], three_d_secure),
        "receipt_email": pi["receipt_email"], "receipt_url": None, "refunded": False,
        "refunds": list_object(f"/v1/charges/{ch_id}/refunds", []),
        "review": None, "shipping": None, "source": None, "status": "pending",
        "statement_descriptor": None, "statement_descriptor_suffix": None,
        "transfer_data": None, "transfer_group": None,
    }


def outcome(declined: bool, reason: str | None = None) -> dict[str, Any]:
    if declined:
        return {"network_status": "declined_by_network", "reason": reason,
                "risk_level": "normal", "risk_score": 20,
                "seller_message": "The bank did not return any further details with this "
                                  "decline.", "type": "issuer_declined"}
    return {"network_status": "approved_by_network", "reason": None, "risk_level": "normal",
            "risk_score": 20, "seller_message": "Payment complete.", "type": "authorized"}


def refund(ch: dict[str, Any], amount: int, reason: str | None,
           metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": new_id("re"), "object": "refund", "amount": amount,
        "balance_transaction": new_id("txn"), "charge": ch["id"], "created": now(),
        "currency": ch["currency"], "destination_details": {"card": {
            "reference_status": "pending", "reference_type": "acquirer_reference_number",
            "type": "refund"}, "type": "card"},
        "metadata": metadata, "payment_intent": ch["payment_intent"], "reason": reason,
        "receipt_number": None, "source_transfer_reversal": None, "status": "succeeded",
        "transfer_reversal": None,
    }


def setup_intent(metadata: dict[str, str], fields: dict[str, Any]) -> dict[str, Any]:
    seti_id = new_id("seti")
    obj: dict[str, Any] = {
        "id": seti_id, "object": "setup_intent", "application": None,
        "automatic_payment_methods": None, "cancellation_reason": None,
        "client_secret": client_secret(seti_id), "created": now(), "customer": None,
        "description": None, "flow_directions": None, "last_setup_error": None,
        "latest_attempt": None, "livemode": False, "mandate": None, "metadata": metadata,
        "next_action": None, "on_behalf_of": None, "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"mandate_options": None, "network": None,
                                            "request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "single_use_mandate": None,
        "status": "requires_payment_method", "usage": "off_session",
    }
    obj.update(fields)
    return obj


# Every evidence field Stripe sends (null until the merchant submits evidence).
_EVIDENCE_FIELDS = (
    "access_activity_log", "billing_address", "cancellation_policy",
    "cancellation_policy_disclosure", "cancellation_rebuttal", "customer_communication",
    "customer_email_address", "customer_name", "customer_purchase_ip", "customer_signature",
    "duplicate_charge_documentation", "duplicate_charge_explanation", "duplicate_charge_id",
    "product_description", "receipt", "refund_policy", "refund_policy_disclosure",
    "refund_refusal_explanation", "service_date", "service_documentation", "shipping_address",
    "shipping_carrier", "shipping_date", "shipping_documentation", "shipping_tracking_number",
    "uncategorized_file", "uncategorized_text")
# Visa's reason code for each Stripe dispute reason the stand-in opens.
_NETWORK_REASON_CODES = {"fraudulent": "10.4", "duplicate": "12.6.1",
                         "product_not_received": "13.1", "product_unacceptable": "13.3",
                         "subscription_canceled": "13.7", "credit_not_processed": "13.6",
                         "general": "13.7", "unrecognized": "10.4"}


def dispute(ch: dict[str, Any], amount: int, reason: str) -> dict[str, Any]:
    created = now()
    details = ch["payment_method_details"]
    card = details.get("card") or {"brand": "unknown"}
    reason_code = _NETWORK_REASON_CODES.get(reason, "13.7")
    return {
        "id": new_id("dp"), "object": "dispute", "amount": amount, "balance_transactions": [],
        "charge": ch["id"], "created": created, "currency": ch["currency"],
        "enhanced_eligibility_types": [],
        "evidence": {**dict.fromkeys(_EVIDENCE_FIELDS), "enhanced_evidence": {}},
        "evidence_details": {"due_by": created + 7 * 86400, "enhanced_eligibility": {},
                             "has_evidence": False, "past_due": False, "submission_count": 0,
                             "submission_method": "not_submitted"},
        "intended_submission_method": None, "is_charge_refundable": False, "livemode": False,
        "metadata": {}, "network_reason_code": reason_code,
        "payment_intent": ch["payment_intent"],
        "payment_method_details": {"card": {"brand": card["brand"], "case_type": "chargeback",
                                            "network": card["brand"],
                                            "network_reason_code": reason_code},
                                   "type": "card"},
        "reason": reason, "status": "needs_response",
    }


def dispute_balance_transaction(dp: dict[str, Any], amount: int, fee: int) -> dict[str, Any]:
    """The balance transaction of a dispute's withdrawal (negative) or reinstatement."""
    created = now()
    withdrawal = amount < 0
    return {
        "id": new_id("txn"), "object": "balance_transaction", "amount": amount,
        "available_on": created + 2 * 86400, "created": created, "currency": dp["currency"],
        "description": "Chargeback withdrawal for " + dp["charge"] if withdrawal
        else "Chargeback reversal for " + dp["charge"],
        "exchange_rate": None, "fee": fee,
        "fee_details": [{"amount": fee, "application": None, "currency": dp["currency"],
                         "description": "Dispute fee", "type": "stripe_fee"}] if fee else [],
        "net": amount - fee, "reporting_category": "dispute" if withdrawal
        else "dispute_reversal", "source": dp["id"], "status": "pending",
        "type": "adjustment",
    }


def list_object(url: str, data: list[dict[str, Any]], has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


_CREATED_BOUNDS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda c, b: c > b, "gte": lambda c, b: c >= b,
    "lt": lambda c, b: c < b, "lte": lambda c, b: c <= b,
}


def _created_filter(params: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Stripe's `created` list filter: an exact timestamp or `created[gt|gte|lt|lte]`."""
    raw = params.get("created")
    if raw is None:
        return lambda obj: True
    bounds = raw if isinstance(raw, dict) else {"eq": raw}
    checks: list[tuple[Callable[[int, int], bool], int]] = []
    for op, value in bounds.items():
        if op not in (*_CREATED_BOUNDS, "eq") or not str(value).lstrip("-").isdigit():
            raise invalid(f"Invalid created[{op}]: must be an integer timestamp",
                          param=f"created[{op}]")
        checks.append((_CREATED_BOUNDS.get(op, lambda c, b: c == b), int(value)))
    return lambda obj: all(check(int(obj.get("created", 0)), b) for check, b in checks)


def paginate(url: str, items: Iterable[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """Newest first, `limit` (1..100, default 10), `starting_after` / `ending_before` cursors,
    filtered by `created` when given."""
    keep = _created_filter(params)
    ordered = sorted((o for o in items if keep(o)), key=lambda o: o.get("created", 0),
                     reverse=True)
    raw_limit = params.get("limit") or "10"
    if not str(raw_limit).isdigit() or not 1 <= int(raw_limit) <= 100:
        raise invalid("Invalid limit: must be an integer between 1 and 100", param="limit")
    limit = int(raw_limit)
    ids = [o["id"] for o in ordered]
    after, before = params.get("starting_after"), params.get("ending_before")
    if after:
        if after not in ids:
            raise invalid(f"No such object: '{after}'", param="starting_after")
        ordered = ordered[ids.index(after) + 1:]
    elif before:
        if before not in ids:
            raise invalid(f"No such object: '{before}'", param="ending_before")
        ordered = ordered[:ids.index(before)][-limit:]
    page = ordered[:limit]
    return list_object(url, [copy.deepcopy(o) for o in page], has_more=len(ordered) > limit)


def expand(obj: dict[str, Any], paths: Iterable[str],
           lookup: Callable[[str], dict[str, Any] | None]) -> dict[str, Any]:
    """Replace id strings named by dotted `expand[]` paths with copies of the objects."""
    result = copy.deepcopy(obj)
    for path in paths:
        _expand_path(result, path.split("."), path, lookup)
    return result


def _expand_path(node: Any, parts: list[str], path: str,
                 lookup: Callable[[str], dict[str, Any] | None]) -> None:
    if isinstance(node, list):
        for item in node:
            _expand_path(item, parts, path, lookup)
        return
    if not isinstance(node, dict) or parts[0] not in node:
        raise invalid(f"This property cannot be expanded ({path}).", param="expand")
    head, rest = parts[0], parts[1:]
    value = node[head]
    if isinstance(value, str):
        found = lookup(value)
        if found is None:
            raise invalid(f"This property cannot be expanded ({path}).", param="expand")
        node[head] = value = copy.deepcopy(found)
    if rest and value is not None:
        _expand_path(value, rest, path, lookup)
