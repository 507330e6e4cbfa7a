"""Typed shape of the tarot deck data (shared/deck/data/*.json).

Every text the product shows is bilingual: `th` must contain Thai script, `en` must be Latin
script only. The validators here are the checks the data file has to pass at load time, so a
broken edit fails at cold start and in CI rather than in front of a user.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from shared.rules import CardCount

Suit = Literal["major", "wands", "cups", "swords", "pentacles"]
Topic = Literal["general", "love", "work", "money", "health"]
Orientation = Literal["upright", "reversed"]
Locale = Literal["th", "en"]

SUITS: tuple[Suit, ...] = ("major", "wands", "cups", "swords", "pentacles")
TOPICS: tuple[Topic, ...] = ("general", "love", "work", "money", "health")
MINOR_RANKS = (
    "ace", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "page", "knight", "queen", "king",
)

_THAI = re.compile(r"[\u0E00-\u0E7F]")
# English text: Latin letters (with accents for names like "Pictorial"), digits, punctuation.
_LATIN_ONLY = re.compile(r"^[\u0020-\u007E\u00A0-\u024F\u2013\u2014\u2018\u2019\u201C\u201D]+$")
_CARD_ID = re.compile(r"^(major-(0\d|1\d|2[01])|(wands|cups|swords|pentacles)-(0[1-9]|1[0-4]))-[a-z-]+$")


def _require_thai(value: str) -> str:
    if not value.strip():
        raise ValueError("empty Thai text")
    if not _THAI.search(value):
        raise ValueError(f"Thai text has no Thai script: {value!r}")
    return value


def _require_latin(value: str) -> str:
    if not value.strip():
        raise ValueError("empty English text")
    if not _LATIN_ONLY.match(value):
        raise ValueError(f"English text is not Latin script: {value!r}")
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Text(_Frozen):
    """One product text in both languages."""

    th: str
    en: str

    @field_validator("th")
    @classmethod
    def _thai(cls, value: str) -> str:
        return _require_thai(value)

    @field_validator("en")
    @classmethod
    def _english(cls, value: str) -> str:
        return _require_latin(value)

    def get(self, locale: Locale) -> str:
        return self.th if locale == "th" else self.en


class Keywords(_Frozen):
    th: tuple[str, ...]
    en: tuple[str, ...]

    @field_validator("th")
    @classmethod
    def _thai(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("no Thai keywords")
        return tuple(_require_thai(v) for v in value)

    @field_validator("en")
    @classmethod
    def _english(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("no English keywords")
        return tuple(_require_latin(v) for v in value)

    def get(self, locale: Locale) -> tuple[str, ...]:
        return self.th if locale == "th" else self.en


class TopicMeanings(_Frozen):
    """What a card says about each topic, in one orientation."""

    general: Text
    love: Text
    work: Text
    money: Text
    health: Text

    def for_topic(self, topic: Topic) -> Text:
        text: Text = getattr(self, topic)
        return text


class Card(_Frozen):
    id: str
    number: int
    suit: Suit
    name: Text
    keywords: Keywords
    # The leaning and tone describe the card upright; reversed readings soften or invert them.
    yes_no: Literal["yes", "no", "maybe"]
    tone: Literal["positive", "neutral", "challenging"]
    upright: TopicMeanings
    reversed: TopicMeanings

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str) -> str:
        if not _CARD_ID.match(value):
            raise ValueError(f"bad card id {value!r}")
        return value

    @model_validator(mode="after")
    def _id_matches(self) -> Card:
        prefix = f"{self.suit}-{self.number:02d}-"
        if not self.id.startswith(prefix):
            raise ValueError(f"card id {self.id!r} does not match suit and number {prefix!r}")
        if self.suit != "major" and not self.id.endswith("-" + MINOR_RANKS[self.number - 1]):
            raise ValueError(f"card id {self.id!r} does not end with its rank")
        return self

    def meaning(self, orientation: Orientation, topic: Topic) -> Text:
        side = self.upright if orientation == "upright" else self.reversed
        return side.for_topic(topic)


class SpreadPosition(_Frozen):
    index: int
    name: Text
    # What the position asks of the card, used when writing its interpretation.
    focus: Text


class Spread(_Frozen):
    card_count: CardCount
    name: Text
    positions: tuple[SpreadPosition, ...]
    # The position whose card carries the advice of the reading.
    advice_index: int

    @model_validator(mode="after")
    def _check(self) -> Spread:
        if [p.index for p in self.positions] != list(range(self.card_count)):
            raise ValueError(f"spread of {self.card_count} needs positions 0..{self.card_count - 1}")
        if not 0 <= self.advice_index < self.card_count:
            raise ValueError("advice_index out of range")
        return self


class SuitFile(_Frozen):
    """One data file: the cards of one suit (or the major arcana)."""

    suit: Suit
    cards: tuple[Card, ...]


class SpreadFile(_Frozen):
    spreads: tuple[Spread, ...]
