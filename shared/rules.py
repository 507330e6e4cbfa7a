"""Values that Python and SQL must both know, stated once on the Python side.

SQL owns these rules (the migrations check them in the functions and tables that store the
data); Python states them to refuse bad input with a clear 422 before any call.
tests/db/test_rules_agree.py reads the latest migrations and proves both say the same.
"""

from __future__ import annotations

from typing import Literal, get_args

# A reading's question, after trimming white space (create_reading_job, tarot readings).
MAX_QUESTION_CHARS = 500
# The spreads on offer (reading_prices.card_count, tarot_readings.card_count).
CardCount = Literal[3, 5]
CARD_COUNTS: tuple[int, ...] = get_args(CardCount)
# A Stripe event id as apply_stripe_event accepts it.
STRIPE_EVENT_ID_PATTERN = r"^evt_[A-Za-z0-9_]{1,250}$"
