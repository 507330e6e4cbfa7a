"""The card table the server draws from mirrors the deck the pipeline reads."""

from __future__ import annotations

from ops.deck_seed import render
from ops.migrate import MIGRATIONS_DIR
from shared.deck import get_deck

SEED = MIGRATIONS_DIR / "20261127002100_seed_tarot_cards.sql"


def test_the_seed_migration_is_what_the_generator_makes_of_the_deck():
    assert SEED.read_text(encoding="utf-8") == render(get_deck())


def test_the_seeded_table_holds_exactly_the_decks_cards(sql):
    rows = sql.execute(
        "select id, suit, number, name_th, name_en from public.tarot_cards order by id").fetchall()

    expected = [
        {"id": c.id, "suit": c.suit, "number": c.number, "name_th": c.name.th,
         "name_en": c.name.en}
        for c in sorted(get_deck().cards, key=lambda card: card.id)
    ]
    assert len(rows) == 78
    assert rows == expected
