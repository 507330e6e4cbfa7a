"""The tarot deck: 78 project-authored cards with Thai and English meanings, and the spreads.

`get_deck()` loads and validates the data once per container. The texts are the project's own;
the English meanings follow the Rider-Waite tradition as described in A. E. Waite's "The
Pictorial Key to the Tarot" (1911, public domain), and the Thai is written for the product, not
translated word for word. The data files (`data/*.json`) must ship with the functions.
"""

from shared.deck.loader import DECK_SIZE, Deck, DeckError, get_deck, load_deck
from shared.deck.models import (
    TOPICS,
    Card,
    Locale,
    Orientation,
    Spread,
    SpreadPosition,
    Suit,
    Text,
    Topic,
)

__all__ = [
    "DECK_SIZE",
    "TOPICS",
    "Card",
    "Deck",
    "DeckError",
    "Locale",
    "Orientation",
    "Spread",
    "SpreadPosition",
    "Suit",
    "Text",
    "Topic",
    "get_deck",
    "load_deck",
]
