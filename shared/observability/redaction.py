"""What never reaches a log line: tokens, secrets and card details (at every level), and text a
user wrote (the question) at INFO and above.

Two kinds of rules: by key (a value logged under a key such as `client_secret`, anywhere in an
`extra=` mapping) and by pattern (a value that looks like a JWT, a bearer header, a Stripe key
or client secret, a QStash signing key or a card number, wherever it appears in the message,
an extra value or an exception's text).
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

# Keys whose values are never logged, whatever the level. `pan` only as a whole word
# (card_pan, pan), not inside names such as `span` or `company`.
SECRET_KEY = re.compile(
    r"(token|secret|password|authorization|api_?key|signature|cookie|card_?number|cvc|cvv"
    r"|(?:^|_)pan(?:$|_))",
    re.IGNORECASE,
)
# Keys whose values (user-written text) appear only at DEBUG.
PRIVATE_TEXT_KEYS = frozenset({"question", "question_text", "prompt", "body"})
SECRET_PATTERNS = (
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),  # JWTs
    re.compile(r"(?i)\bbearer\s+[^\s\"',]+"),
    re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+"),  # Stripe secret/restricted keys
    re.compile(r"\bwhsec_[A-Za-z0-9]+"),  # Stripe webhook secrets
    re.compile(r"\b(?:pi|seti)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+"),  # client secrets
    re.compile(r"\b(?:sig|key)_[A-Za-z0-9]{16,}"),  # QStash signing keys
    re.compile(r"\b\d(?:[ -]?\d){12,18}\b"),  # card numbers (13-19 digits)
)
# Pydantic quotes the value it refused (`input_value=...`) in a ValidationError's text, and that
# value may be the question or words of it: kept at DEBUG only, like other user-written text.
# The value is a repr on one line that ends with `, input_type=<type>]`; greedy up to that end,
# so a value that itself contains ", input_type=" is removed whole.
PYDANTIC_INPUT = re.compile(r"input_value=.*(?=, input_type=\w+\]$)", re.MULTILINE)
# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact_text(text: str) -> str:
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def redact_private_text(text: str, level: int) -> str:
    """`redact_text`, and at INFO and above also the inputs quoted by validation errors."""
    text = redact_text(text)
    if level >= logging.INFO:
        text = PYDANTIC_INPUT.sub(f"input_value={REDACTED}", text)
    return text


def redact_value(key: str, value: Any, level: int) -> Any:
    if SECRET_KEY.search(key):
        return REDACTED
    if key.lower() in PRIVATE_TEXT_KEYS and level >= logging.INFO:
        return REDACTED
    if isinstance(value, str):
        return redact_private_text(value, level)
    if isinstance(value, Mapping):
        return {str(k): redact_value(str(k), v, level) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(key, v, level) for v in value]
    return value


class RedactionFilter(logging.Filter):
    """Scrubs a record in place before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_private_text(record.getMessage(), record.levelno)
        record.args = None
        for key in list(vars(record)):
            if key not in _RECORD_ATTRIBUTES:
                setattr(record, key, redact_value(key, getattr(record, key), record.levelno))
        exc_info = record.exc_info
        if isinstance(exc_info, tuple) and exc_info[0] is not None:
            # An exception's message may quote what it failed on (a header, a key): the
            # traceback is formatted here, redacted, and passed on as the `exception` key that
            # the Powertools formatter prefers over formatting exc_info itself.
            record.exception = redact_private_text(
                "".join(traceback.format_exception(*exc_info)).rstrip(), record.levelno)
            record.exception_name = exc_info[0].__name__
            record.exc_info = None
            record.exc_text = None
        return True
