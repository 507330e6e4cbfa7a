"""The one interface every reading provider implements: the pipeline's three steps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared.deck.models import Locale, Spread
from shared.pipeline.models import GuardResult, QuestionAnalysis, ResolvedCard, TarotReading

# Bumped whenever a prompt or the offline reader's wording rules change, so a stored reading
# says which version wrote it.
PROMPT_VERSION = "2026-11-27.1"


class ReadingProvider(Protocol):
    """Raises `RetryableProviderError` or `PermanentProviderError` (shared.pipeline.errors)."""

    @property
    def name(self) -> str:
        """Recorded with the reading, e.g. "offline" or "openai:<model>"."""
        ...

    def guard(self, question: str, locale: Locale) -> GuardResult: ...

    def analyse(self, question: str, locale: Locale) -> QuestionAnalysis: ...

    def read(
        self,
        question: str,
        locale: Locale,
        analysis: QuestionAnalysis,
        spread: Spread,
        cards: Sequence[ResolvedCard],
    ) -> TarotReading: ...
