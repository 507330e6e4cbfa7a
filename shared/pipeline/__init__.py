"""The reading pipeline: guard → question analysis → reading, behind one provider interface.

Importing this package is cheap: the OpenAI-compatible provider (and httpx) is imported only when
`build_provider` is asked for it.
"""

from shared.pipeline.errors import (
    InvalidPipelineInput,
    PermanentProviderError,
    PipelineError,
    RetryableProviderError,
)
from shared.pipeline.models import (
    SCHEMA_VERSION,
    DrawnCard,
    GuardResult,
    PipelineResult,
    QuestionAnalysis,
    ReadingCard,
    TarotReading,
)
from shared.pipeline.offline import OfflineReader
from shared.pipeline.provider import PROMPT_VERSION, ReadingProvider
from shared.pipeline.run import build_provider, resolve_cards, run_pipeline

__all__ = [
    "PROMPT_VERSION",
    "SCHEMA_VERSION",
    "DrawnCard",
    "GuardResult",
    "InvalidPipelineInput",
    "OfflineReader",
    "PermanentProviderError",
    "PipelineError",
    "PipelineResult",
    "QuestionAnalysis",
    "ReadingCard",
    "ReadingProvider",
    "RetryableProviderError",
    "TarotReading",
    "build_provider",
    "resolve_cards",
    "run_pipeline",
]
