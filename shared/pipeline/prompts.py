"""Prompts of the LLM provider and the JSON shapes it must answer with.

The model is never trusted with facts we already hold: card ids, names, orientations and
positions come from the deck and the draw; the model writes only the prose. Refusal messages
are ours too (shared.pipeline.guard), the model only classifies.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.deck.models import Locale, Spread
from shared.pipeline.models import GuardCategory, QuestionAnalysis, ResolvedCard

LANGUAGE_NAME: dict[Locale, str] = {"th": "Thai (natural, warm, everyday Thai)", "en": "English"}


class GuardVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed: bool
    category: GuardCategory

    @model_validator(mode="after")
    def _consistent(self) -> GuardVerdict:
        if self.allowed != (self.category == "ok"):
            raise ValueError('"allowed" must be true exactly when "category" is "ok"')
        return self


class CardProse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    position: int
    interpretation: str = Field(min_length=20, max_length=2000)


class ReadingProse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cards: list[CardProse]
    summary: str = Field(min_length=20, max_length=3000)
    advice: str = Field(min_length=10, max_length=2000)


GUARD_SYSTEM = """You screen questions sent to a Thai tarot-reading app before any reading.
Classify the user's question into exactly one category:
- "self_harm": suicide, self-harm, wanting to die or not wanting to live, in any wording.
- "medical": asks for a diagnosis, or whether to start, stop or change medicine or treatment.
- "illegal": asks how to commit a crime or harm another person.
- "unsupported_language": not written in Thai or English.
- "ok": anything else, including love, work, money, health outlook and life questions.
Be careful: a person asking as a victim ("who stole my bag?") is "ok".
Answer with only a JSON object: {"allowed": <true only when category is "ok">, "category": "<category>"}."""

ANALYSIS_SYSTEM = """You analyse a question sent to a tarot-reading app.
Answer with only a JSON object with exactly these fields:
{"topic": one of "love", "work", "money", "health", "general",
 "intent": one of "yes_no", "advice", "prediction", "insight",
 "time_frame": one of "today", "this_week", "this_month", "this_year", "near_future",
   "long_term", "unspecified",
 "keywords": up to 8 short keywords (each under 40 characters) in the question's own language}."""

READING_SYSTEM = """You are a warm, honest tarot reader for a Thai app. Write the reading in {language}.
Use the card meanings you are given (they follow the Rider-Waite tradition) and apply them to
the question, the topic and each card's position. Never predict death, illness or disaster as
fact, never give medical, legal or financial instructions, and never claim certainty: the cards
show tendencies. Be specific to the question and kind in tone.
Answer with only a JSON object with exactly these fields:
{{"cards": [{{"position": <int, as given>, "interpretation": "<2-4 sentences>"}}, ...one per card, in order],
 "summary": "<3-5 sentences tying the cards together>",
 "advice": "<2-3 sentences of practical, gentle advice>"}}"""


def guard_messages(question: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": GUARD_SYSTEM},
        {"role": "user", "content": question},
    ]


def analysis_messages(question: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": ANALYSIS_SYSTEM},
        {"role": "user", "content": question},
    ]


def reading_messages(
    question: str,
    locale: Locale,
    analysis: QuestionAnalysis,
    spread: Spread,
    cards: Sequence[ResolvedCard],
) -> list[dict[str, str]]:
    facts: dict[str, Any] = {
        "question": question,
        "analysis": analysis.model_dump(),
        "spread": spread.name.get(locale),
        "cards": [
            {
                "position": c.drawn.position,
                "position_name": c.position.name.get(locale),
                "position_meaning": c.position.focus.get(locale),
                "card": c.card.name.get(locale),
                "orientation": c.drawn.orientation,
                "keywords": list(c.card.keywords.get(locale)),
                "meaning_for_topic": c.card.meaning(c.drawn.orientation, analysis.topic).get(locale),
                "general_meaning": c.card.meaning(c.drawn.orientation, "general").get(locale),
            }
            for c in cards
        ],
    }
    return [
        {"role": "system", "content": READING_SYSTEM.format(language=LANGUAGE_NAME[locale])},
        {"role": "user", "content": json.dumps(facts, ensure_ascii=False)},
    ]


def correction_message(error: str) -> dict[str, str]:
    return {
        "role": "user",
        "content": (
            "Your previous answer was not valid: " + error[:1500]
            + "\nReply again with only the corrected JSON object, nothing else."
        ),
    }
