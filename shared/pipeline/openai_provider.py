"""A reading provider over any OpenAI-compatible chat-completions API (httpx, no SDK).

`POST {LLM_BASE_URL}/chat/completions` with `response_format` asking for a JSON object. Each
answer is validated with pydantic; an invalid one is re-asked once with the validation error,
and a second invalid answer is a `PermanentProviderError`. Transport failures are classified by
what a later attempt could change: timeouts, connection errors, 408/409/429 and 5xx are
retryable; other 4xx (bad key, bad request, unknown model) are permanent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from shared.deck.models import Locale, Spread
from shared.pipeline import prompts
from shared.pipeline.errors import PermanentProviderError, RetryableProviderError
from shared.pipeline.guard import refusal
from shared.pipeline.models import (
    GuardResult,
    QuestionAnalysis,
    ResolvedCard,
    TarotReading,
)
from shared.settings import Settings

logger = logging.getLogger("mimivibe.pipeline")

ModelT = TypeVar("ModelT", bound=BaseModel)
ResponseFormat = Literal["json_object", "json_schema"]
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
MAX_REASKS = 1
# guard, question analysis and reading, each asked once more when its answer is invalid: the
# most chat-completions calls one reading makes, each bounded by LLM_TIMEOUT_SECONDS.
STEPS_PER_READING = 3
MAX_CALLS_PER_READING = STEPS_PER_READING * (1 + MAX_REASKS)


class InvalidAnswer(ValueError):
    """The model's answer is not the JSON we asked for (re-asked once, then permanent)."""


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def _error_detail(response: httpx.Response) -> str:
    # OpenAI-style errors are {"error": {"message": ...}}; the text never includes our key.
    try:
        body = response.json()
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
    except ValueError:
        message = None
    return str(message or response.reason_phrase or "")[:300]


class OpenAICompatibleProvider:
    """`ReadingProvider` backed by a chat-completions endpoint; one httpx client per container."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: SecretStr | None = None,
        timeout_seconds: float = 30.0,
        response_format: ResponseFormat = "json_object",
        client: httpx.Client | None = None,
    ) -> None:
        self.model = model
        self.response_format = response_format
        headers = {"Accept": "application/json"}
        if api_key is not None and api_key.get_secret_value():
            headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"
        timeout = httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds))
        self._client = client or httpx.Client(timeout=timeout)
        self._client.headers.update(headers)
        self._url = base_url.rstrip("/") + "/chat/completions"

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAICompatibleProvider:
        settings.require("llm_base_url", "llm_model")
        return cls(
            base_url=str(settings.llm_base_url),
            model=str(settings.llm_model),
            api_key=settings.llm_api_key,
            timeout_seconds=settings.llm_timeout_seconds,
        )

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    def close(self) -> None:
        self._client.close()

    # -- transport -------------------------------------------------------------------------

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.post(self._url, json=body)
        except httpx.TimeoutException as exc:
            raise RetryableProviderError(f"LLM request timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise RetryableProviderError(f"LLM connection failed ({type(exc).__name__})") from exc
        status = response.status_code
        if status in RETRYABLE_STATUS or status >= 500:
            raise RetryableProviderError(
                f"LLM returned {status}: {_error_detail(response)}", retry_after=_retry_after(response)
            )
        if status >= 400:
            raise PermanentProviderError(f"LLM returned {status}: {_error_detail(response)}")
        try:
            payload = response.json()
        except ValueError as exc:
            raise PermanentProviderError("LLM response is not JSON") from exc
        if not isinstance(payload, dict):
            raise PermanentProviderError("LLM response is not a JSON object")
        return payload

    def _content(self, payload: dict[str, Any]) -> str:
        try:
            choice = payload["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise PermanentProviderError("LLM response has no choices[0].message") from exc
        if not isinstance(choice, dict) or not isinstance(message, dict):
            raise PermanentProviderError("LLM response has a malformed choices[0]")
        if message.get("refusal"):
            raise InvalidAnswer("the model refused to answer; answer with the JSON object")
        if choice.get("finish_reason") == "length":
            raise InvalidAnswer("the answer was cut off; answer more briefly")
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            raise InvalidAnswer("the answer is empty")
        return content

    def _request_body(self, step: str, messages: list[dict[str, str]],
                      schema_model: type[BaseModel], temperature: float) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages,
                                "temperature": temperature}
        if self.response_format == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": step, "schema": schema_model.model_json_schema(),
                                "strict": False},
            }
        else:
            body["response_format"] = {"type": "json_object"}
        return body

    def _ask(
        self,
        step: str,
        messages: list[dict[str, str]],
        model: type[ModelT],
        *,
        temperature: float = 0.2,
        check: Callable[[ModelT], None] | None = None,
    ) -> ModelT:
        """One structured answer, re-asked once with the validation error when invalid."""
        conversation = list(messages)
        for attempt in range(MAX_REASKS + 1):
            payload = self._post(self._request_body(step, conversation, model, temperature))
            content = ""
            try:
                content = self._content(payload)
                parsed = model.model_validate_json(content.strip())
                if check is not None:
                    check(parsed)
                return parsed
            except (InvalidAnswer, ValidationError, ValueError) as exc:
                error = str(exc)
                logger.warning("invalid LLM answer", extra={"step": step, "attempt": attempt + 1})
            if attempt < MAX_REASKS:
                if content:
                    conversation.append({"role": "assistant", "content": content})
                conversation.append(prompts.correction_message(error))
        raise PermanentProviderError(f"LLM answer for {step} stayed invalid: {error[:300]}")

    # -- the three steps ---------------------------------------------------------------------

    def guard(self, question: str, locale: Locale) -> GuardResult:
        verdict = self._ask("guard", prompts.guard_messages(question), prompts.GuardVerdict,
                            temperature=0.0)
        return refusal(verdict.category, question, locale)

    def analyse(self, question: str, locale: Locale) -> QuestionAnalysis:
        return self._ask("question_analysis", prompts.analysis_messages(question),
                         QuestionAnalysis, temperature=0.0)

    def read(
        self,
        question: str,
        locale: Locale,
        analysis: QuestionAnalysis,
        spread: Spread,
        cards: Sequence[ResolvedCard],
    ) -> TarotReading:
        expected = [c.drawn.position for c in cards]

        def same_positions(prose: prompts.ReadingProse) -> None:
            got = [c.position for c in prose.cards]
            if got != expected:
                raise InvalidAnswer(f"cards must have positions {expected} in this order, got {got}")

        prose = self._ask(
            "tarot_reading",
            prompts.reading_messages(question, locale, analysis, spread, cards),
            prompts.ReadingProse,
            temperature=0.7,
            check=same_positions,
        )
        return TarotReading(
            cards=[
                c.read_as(locale, p.interpretation.strip())
                for c, p in zip(cards, prose.cards, strict=True)
            ],
            summary=prose.summary.strip(),
            advice=prose.advice.strip(),
        )

