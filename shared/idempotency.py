"""The Idempotency-Key rule, stated once for every function that takes the header.

A key is 1 to 255 printable ASCII characters (U+0020 to U+007E), the whole value: a trailing
newline or any other control character makes it invalid. The SQL functions that store a key
check the same bounds; tests/db/test_rules_agree.py reads the migrations and ties them to this.
"""

from __future__ import annotations

import re

from shared.errors import ValidationFailed

PATTERN = r"[\x20-\x7e]{1,255}"
_KEY = re.compile(PATTERN)
MAX_LENGTH = 255


def is_valid(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


def optional_key(value: str | None) -> str | None:
    """A key where one may be sent: absent is None, present must be valid (422 otherwise)."""
    if value is not None and not is_valid(value):
        raise ValidationFailed("Idempotency-Key must be 1 to 255 printable ASCII characters.")
    return value


def required_key(value: str | None) -> str:
    """A key where one must be sent: absent or invalid is a 422."""
    if value is None or not is_valid(value):
        raise ValidationFailed(
            "An Idempotency-Key header of 1 to 255 printable ASCII characters is required."
        )
    return value
