"""The pipeline's typed inputs and outputs.

`QuestionAnalysis` is stored as `tarot_readings.question_analysis` and `TarotReading` as
`tarot_readings.tarot_reading`; `SCHEMA_VERSION` names their shape and changes whenever a field
is added, removed or retyped, so stored readings can be told apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.deck.models import Card, Locale, Orientation, SpreadPosition, Topic

SCHEMA_VERSION = "2026-11-27.1"

GuardCategory = Literal[
    "ok",
    "self_harm",
    "medical",
    "illegal",
    "too_short",
    "too_long",
    "unsupported_language",
]
Intent = Literal["yes_no", "advice", "prediction", "insight"]
TimeFrame = Literal[
    "today", "this_week", "this_month", "this_year", "near_future", "long_term", "unspecified",
]


class _Output(BaseModel):
    # Outputs are validated strictly: an LLM answer with extra or missing fields is re-asked.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DrawnCard(_Output):
    """A card drawn in SQL and stored on the job: which card, where, which way up."""

    position: int = Field(ge=0, le=4)
    card_id: str = Field(min_length=1, max_length=64)
    orientation: Orientation


class GuardResult(_Output):
    allowed: bool
    category: GuardCategory
    # The message shown instead of a reading; None when the question is allowed.
    message: str | None = None


class QuestionAnalysis(_Output):
    topic: Topic
    intent: Intent
    time_frame: TimeFrame
    keywords: list[str] = Field(default_factory=list, max_length=10)

    @field_validator("keywords")
    @classmethod
    def _clean(cls, value: list[str]) -> list[str]:
        cleaned = [k.strip() for k in value if k.strip()]
        if any(len(k) > 40 for k in cleaned):
            raise ValueError("a keyword is longer than 40 characters")
        return cleaned


class ReadingCard(_Output):
    position: int = Field(ge=0, le=4)
    position_name: str = Field(min_length=1)
    card_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    orientation: Orientation
    interpretation: str = Field(min_length=1, max_length=2000)


class TarotReading(_Output):
    cards: list[ReadingCard] = Field(min_length=3, max_length=5)
    summary: str = Field(min_length=1, max_length=3000)
    advice: str = Field(min_length=1, max_length=2000)


class PipelineResult(_Output):
    status: Literal["completed", "refused"]
    guard: GuardResult
    question_analysis: QuestionAnalysis | None = None
    tarot_reading: TarotReading | None = None
    processing_time_ms: int = Field(ge=1)
    provider: str
    prompt_version: str
    schema_version: str = SCHEMA_VERSION

    @property
    def refused(self) -> bool:
        return self.status == "refused"


@dataclass(frozen=True)
class ResolvedCard:
    """A drawn card joined with its deck entry and spread position (what a provider reads)."""

    drawn: DrawnCard
    card: Card
    position: SpreadPosition

    def name(self, locale: Locale) -> str:
        return self.card.name.get(locale)

    def read_as(self, locale: Locale, interpretation: str) -> ReadingCard:
        """This card in a reading, with a provider's `interpretation`."""
        return ReadingCard(
            position=self.drawn.position,
            position_name=self.position.name.get(locale),
            card_id=self.card.id,
            name=self.name(locale),
            orientation=self.drawn.orientation,
            interpretation=interpretation,
        )
