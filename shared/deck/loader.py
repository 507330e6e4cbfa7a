"""Load the 78-card deck and the spreads from the package's data files, once per container.

The data is split into one file per suit (plus `spreads.json`) so that each file stays readable
in review; the loader merges them and checks the deck as a whole (counts, unique ids).
"""

from __future__ import annotations

import json
from functools import cached_property, lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from shared.deck.models import SUITS, Card, Spread, SpreadFile, SuitFile

DATA_DIR = Path(__file__).with_name("data")
CARDS_PER_SUIT = {"major": 22, "wands": 14, "cups": 14, "swords": 14, "pentacles": 14}
DECK_SIZE = 78


class DeckError(ValueError):
    """The deck data files are missing or invalid."""


class Deck(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cards: tuple[Card, ...]
    spreads: tuple[Spread, ...]

    @model_validator(mode="after")
    def _check(self) -> Deck:
        if len(self.cards) != DECK_SIZE:
            raise ValueError(f"the deck has {len(self.cards)} cards, expected {DECK_SIZE}")
        ids = [c.id for c in self.cards]
        if len(set(ids)) != len(ids):
            raise ValueError("card ids are not unique")
        for suit, expected in CARDS_PER_SUIT.items():
            numbers = sorted(c.number for c in self.cards if c.suit == suit)
            first = 0 if suit == "major" else 1
            if numbers != list(range(first, first + expected)):
                raise ValueError(f"suit {suit} must number {first}..{first + expected - 1}")
        for field in ("name",):
            for locale in ("th", "en"):
                values = [getattr(c, field).get(locale) for c in self.cards]
                if len(set(values)) != len(values):
                    raise ValueError(f"card {field}s ({locale}) are not unique")
        if sorted(s.card_count for s in self.spreads) != [3, 5]:
            raise ValueError("the deck needs exactly one 3-card and one 5-card spread")
        return self

    @cached_property
    def by_id(self) -> dict[str, Card]:
        return {c.id: c for c in self.cards}

    def card(self, card_id: str) -> Card:
        try:
            return self.by_id[card_id]
        except KeyError:
            raise KeyError(f"unknown card id {card_id!r}") from None

    def spread(self, card_count: int) -> Spread:
        for spread in self.spreads:
            if spread.card_count == card_count:
                return spread
        raise KeyError(f"no spread of {card_count} cards")


def load_deck(data_dir: Path = DATA_DIR) -> Deck:
    """Read and validate the data files in `data_dir` (uncached: tests and tools)."""
    try:
        cards: list[Card] = []
        for suit in SUITS:
            suit_file = SuitFile.model_validate_json((data_dir / f"{suit}.json").read_bytes())
            if suit_file.suit != suit or any(c.suit != suit for c in suit_file.cards):
                raise DeckError(f"{suit}.json holds cards of another suit")
            cards.extend(suit_file.cards)
        spreads = SpreadFile.model_validate_json((data_dir / "spreads.json").read_bytes())
        return Deck(cards=tuple(cards), spreads=spreads.spreads)
    except (OSError, json.JSONDecodeError) as exc:
        raise DeckError(f"cannot read the deck data: {exc}") from exc
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        if isinstance(exc, DeckError):
            raise
        raise DeckError(f"invalid deck data: {exc}") from exc


@lru_cache(maxsize=1)
def get_deck() -> Deck:
    """The validated deck, loaded once per container."""
    return load_deck()
