"""Rules both layers must know: the Python statement of each (shared/rules.py,
shared/idempotency.py) against what the latest migrations say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared import idempotency
from shared.rules import CARD_COUNTS, MAX_QUESTION_CHARS, STRIPE_EVENT_ID_PATTERN

MIGRATIONS = Path(__file__).resolve().parents[2] / "supabase" / "migrations"


def latest(kind: str, name: str) -> str:
    """The text of the newest `create [or replace] <kind> <name>` in the migrations: from the
    statement to the end of its dollar-quoted body (functions) or its closing `);` (tables)."""
    start = re.compile(rf"create\s+(?:or\s+replace\s+)?{kind}\s+{re.escape(name)}\s*\(", re.I)
    for path in sorted(MIGRATIONS.glob("*.sql"), reverse=True):
        text = path.read_text()
        found = list(start.finditer(text))
        if found:
            rest = text[found[-1].start():]
            end = re.search(r"\$\$\s*;" if kind == "function" else r"\n\);", rest)
            assert end is not None, f"{name} in {path.name} has no end"
            return rest[:end.end()]
    raise AssertionError(f"no migration creates {kind} {name}")


def one(pattern: str, text: str) -> re.Match[str]:
    found = re.search(pattern, text)
    assert found is not None, pattern
    return found


def test_the_idempotency_key_rule_is_the_one_create_reading_job_checks():
    body = latest("function", "public.create_reading_job")
    sql_pattern = one(r"p_idempotency_key !~ '(.*?)'", body).group(1)
    assert sql_pattern == f"^{idempotency.PATTERN}$"


@pytest.mark.parametrize(("kind", "name", "column"), [
    ("function", "public.begin_purchase", "p_idempotency_key"),
    ("function", "public.exchange_coins", "v_key"),
    ("table", "public.payments", "idempotency_key"),
    ("table", "private.payment_method_setups", "idempotency_key"),
])
def test_every_stored_idempotency_key_has_the_same_bounds(kind, name, column):
    bounds = one(rf"char_length\({column}\) (?:not )?between (\d+) and (\d+)", latest(kind, name))
    assert (int(bounds.group(1)), int(bounds.group(2))) == (1, idempotency.MAX_LENGTH)
    assert idempotency.PATTERN.endswith(f"{{1,{idempotency.MAX_LENGTH}}}")


def test_a_key_with_a_trailing_newline_is_refused_like_sql_refuses_it():
    # PostgreSQL's `$` matches only at the very end; Python's re `$` also before a final "\n".
    assert not idempotency.is_valid("key\n")
    assert idempotency.is_valid("key")


def test_the_question_limit_is_the_one_sql_checks():
    body = latest("function", "public.create_reading_job")
    assert one(r"char_length\(v_question\) not between 1 and (\d+)", body).group(1) == \
        str(MAX_QUESTION_CHARS)
    table = latest("table", "public.tarot_readings")
    assert one(r"char_length\(btrim\(question\)\) between 1 and (\d+)", table).group(1) == \
        str(MAX_QUESTION_CHARS)


@pytest.mark.parametrize("table", ["public.reading_prices", "public.tarot_readings"])
def test_the_spreads_are_the_ones_sql_allows(table):
    allowed = one(r"check \(card_count in \(([\d, ]+)\)\)", latest("table", table)).group(1)
    assert tuple(int(n) for n in allowed.split(",")) == CARD_COUNTS


def test_the_stripe_event_id_format_is_the_one_apply_stripe_event_checks():
    body = latest("function", "public.apply_stripe_event")
    assert one(r"p_event_id !~ '(.*?)'", body).group(1) == STRIPE_EVENT_ID_PATTERN
