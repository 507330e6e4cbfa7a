"""The pipeline's entry point: guard → question analysis → reading.

The rule-based guard always runs first, whatever the provider, so refusals that protect people
never depend on a network call; the provider's own guard runs after it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from shared.deck import Deck, Locale, get_deck
from shared.errors import ConfigError
from shared.pipeline.errors import InvalidPipelineInput
from shared.pipeline.guard import screen_question
from shared.pipeline.models import DrawnCard, GuardResult, PipelineResult, ResolvedCard
from shared.pipeline.provider import PROMPT_VERSION, ReadingProvider
from shared.rules import CARD_COUNTS
from shared.settings import Settings


def resolve_cards(cards: Sequence[DrawnCard], deck: Deck) -> list[ResolvedCard]:
    """Join the drawn cards with the deck and the spread; refuse a draw that cannot be read."""
    if len(cards) not in CARD_COUNTS:
        raise InvalidPipelineInput(f"a reading needs 3 or 5 cards, got {len(cards)}")
    ordered = sorted(cards, key=lambda c: c.position)
    if [c.position for c in ordered] != list(range(len(cards))):
        raise InvalidPipelineInput("card positions must be 0..n-1, each once")
    if len({c.card_id for c in cards}) != len(cards):
        raise InvalidPipelineInput("a card was drawn twice")
    spread = deck.spread(len(cards))
    try:
        return [
            ResolvedCard(drawn=c, card=deck.card(c.card_id), position=spread.positions[c.position])
            for c in ordered
        ]
    except KeyError as exc:
        raise InvalidPipelineInput(str(exc.args[0])) from None


def _elapsed_ms(started: float) -> int:
    # tarot_readings.processing_time_ms must be positive.
    return max(1, round((time.monotonic() - started) * 1000))


def run_pipeline(
    question: str,
    locale: Locale,
    cards: list[DrawnCard],
    provider: ReadingProvider,
    *,
    deck: Deck | None = None,
) -> PipelineResult:
    """Refused (with the message to show) or completed (analysis + reading).

    Raises `InvalidPipelineInput` for cards that do not fit the deck, and the provider's
    `RetryableProviderError` / `PermanentProviderError`.
    """
    started = time.monotonic()
    deck = deck or get_deck()
    resolved = resolve_cards(cards, deck)

    def refused(verdict: GuardResult) -> PipelineResult:
        return PipelineResult(status="refused", guard=verdict, processing_time_ms=_elapsed_ms(started),
                              provider=provider.name, prompt_version=PROMPT_VERSION)

    verdict = screen_question(question, locale)
    if not verdict.allowed:
        return refused(verdict)
    verdict = provider.guard(question, locale)
    if not verdict.allowed:
        return refused(verdict)
    analysis = provider.analyse(question, locale)
    reading = provider.read(question, locale, analysis, deck.spread(len(resolved)), resolved)
    return PipelineResult(
        status="completed",
        guard=verdict,
        question_analysis=analysis,
        tarot_reading=reading,
        processing_time_ms=_elapsed_ms(started),
        provider=provider.name,
        prompt_version=PROMPT_VERSION,
    )


def build_provider(settings: Settings) -> ReadingProvider:
    """The provider named by LLM_PROVIDER: "offline" (default) or "openai" (any compatible API)."""
    kind = settings.llm_provider.strip().lower()
    if kind == "offline":
        from shared.pipeline.offline import OfflineReader

        return OfflineReader()
    if kind in ("openai", "openai_compatible", "openai-compatible"):
        # Imported here so that functions using the offline reader never import httpx for it.
        from shared.pipeline.openai_provider import OpenAICompatibleProvider

        return OpenAICompatibleProvider.from_settings(settings)
    raise ConfigError(f"Unknown LLM_PROVIDER {settings.llm_provider!r}")
