"""The OpenAI-compatible provider against a local chat-completions server of the test's own."""

from __future__ import annotations

import time

import httpx
import pytest
from pydantic import SecretStr

from devstack.ports import free_port
from devstack.serve import ServerThread
from shared.errors import ConfigError
from shared.pipeline import (
    DrawnCard,
    PermanentProviderError,
    RetryableProviderError,
    build_provider,
    run_pipeline,
)
from shared.pipeline.openai_provider import MAX_CALLS_PER_READING, OpenAICompatibleProvider
from shared.settings import Settings
from tests.pipeline.llm_stub import SLOW_SECONDS, LlmStub

QUESTION = "แฟนเก่าจะกลับมาคืนดีกับฉันไหมในเดือนนี้"
CARDS = [
    DrawnCard(position=0, card_id="major-06-the-lovers", orientation="upright"),
    DrawnCard(position=1, card_id="swords-03-three", orientation="reversed"),
    DrawnCard(position=2, card_id="cups-10-ten", orientation="upright"),
]


@pytest.fixture(scope="module")
def stub():
    llm = LlmStub()
    with ServerThread(llm.app, name="llm-stub") as server:
        llm.url = server.url
        yield llm


def provider_for(stub, scenario: str, **kwargs) -> OpenAICompatibleProvider:
    kwargs.setdefault("api_key", SecretStr("sk-test-key"))
    kwargs.setdefault("timeout_seconds", 5.0)
    return OpenAICompatibleProvider(base_url=f"{stub.url}/{scenario}/v1", model="stub-model",
                                    **kwargs)


def test_valid_answers_make_a_complete_reading(stub):
    provider = provider_for(stub, "valid")
    result = run_pipeline(QUESTION, "th", CARDS, provider)
    assert result.status == "completed"
    assert result.provider == "openai:stub-model"
    assert result.question_analysis is not None
    assert result.question_analysis.topic == "love"
    reading = result.tarot_reading
    assert reading is not None
    # Card facts come from the draw and the deck, the prose from the model.
    assert [c.card_id for c in reading.cards] == [c.card_id for c in CARDS]
    assert [c.orientation for c in reading.cards] == ["upright", "reversed", "upright"]
    assert reading.cards[0].name == "คู่รัก"
    assert reading.cards[1].position_name == "ปัจจุบัน"
    assert "คู่รัก" in reading.cards[0].interpretation
    assert reading.advice.startswith("Reach out kindly")
    sent = stub.bodies("valid")
    assert len(sent) == 3
    assert all(b["model"] == "stub-model" for b in sent)
    assert all(b["response_format"] == {"type": "json_object"} for b in sent)
    assert {r["authorization"] for r in stub.requests if r["scenario"] == "valid"} == {
        "Bearer sk-test-key"
    }
    assert "Thai" in sent[2]["messages"][0]["content"]


def test_json_schema_response_format_sends_the_schema(stub):
    provider = provider_for(stub, "valid", response_format="json_schema")
    analysis = provider.analyse("Will I find love this year?", "en")
    assert analysis.topic == "love"
    sent = stub.bodies("valid")[-1]["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "question_analysis"
    assert "topic" in sent["json_schema"]["schema"]["properties"]


def test_an_invalid_answer_is_reasked_once_with_the_error(stub):
    provider = provider_for(stub, "invalid-then-valid")
    result = run_pipeline(QUESTION, "th", CARDS, provider)
    assert result.status == "completed"
    sent = stub.bodies("invalid-then-valid")
    # Each of the three steps: one invalid answer, one re-ask; the most a reading ever makes.
    assert len(sent) == MAX_CALLS_PER_READING == 6
    reask = sent[1]["messages"]
    assert reask[2]["role"] == "assistant"
    assert reask[2]["content"].startswith("Sure!")
    assert reask[3]["role"] == "user"
    assert "not valid" in reask[3]["content"]
    assert "JSON" in reask[3]["content"]


def test_a_reading_with_wrong_positions_is_reasked(stub):
    provider = provider_for(stub, "wrong-positions-then-valid")
    reading = run_pipeline(QUESTION, "th", CARDS, provider).tarot_reading
    assert reading is not None
    assert [c.position for c in reading.cards] == [0, 1, 2]
    reading_requests = [b for b in stub.bodies("wrong-positions-then-valid")
                        if "tarot reader" in b["messages"][0]["content"]]
    assert len(reading_requests) == 2
    assert "positions [0, 1, 2]" in reading_requests[1]["messages"][-1]["content"]


def test_an_answer_that_stays_invalid_fails_permanently_after_one_reask(stub):
    provider = provider_for(stub, "always-invalid")
    with pytest.raises(PermanentProviderError, match="stayed invalid") as caught:
        run_pipeline(QUESTION, "th", CARDS, provider)
    assert caught.value.retryable is False
    assert len(stub.bodies("always-invalid")) == 2


def test_a_truncated_answer_counts_as_invalid(stub):
    provider = provider_for(stub, "truncated")
    with pytest.raises(PermanentProviderError):
        provider.guard(QUESTION, "th")
    assert len(stub.bodies("truncated")) == 2
    assert "cut off" in stub.bodies("truncated")[1]["messages"][-1]["content"]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_are_retryable(stub, status):
    provider = provider_for(stub, f"status-{status}")
    with pytest.raises(RetryableProviderError, match=str(status)) as caught:
        provider.analyse(QUESTION, "th")
    assert caught.value.retryable is True
    assert len(stub.bodies(f"status-{status}")) == 1  # no re-ask for transport errors
    if status == 429:
        assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("status", [400, 401, 404])
def test_auth_and_bad_request_errors_are_permanent(stub, status):
    provider = provider_for(stub, f"status-{status}")
    with pytest.raises(PermanentProviderError, match=str(status)) as caught:
        provider.analyse(QUESTION, "th")
    assert caught.value.retryable is False
    assert "sk-test-key" not in str(caught.value)


def test_a_slow_answer_times_out_as_retryable(stub):
    provider = provider_for(stub, "slow", timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(RetryableProviderError, match="timed out"):
        provider.guard(QUESTION, "th")
    assert time.monotonic() - started < SLOW_SECONDS


def test_a_refused_connection_is_retryable():
    provider = OpenAICompatibleProvider(base_url=f"http://127.0.0.1:{free_port()}/v1",
                                        model="m", timeout_seconds=2.0)
    with pytest.raises(RetryableProviderError, match="connection"):
        provider.analyse(QUESTION, "th")


def test_the_model_guard_refuses_with_our_own_caring_message(stub):
    # The rules let this question through; the model flags it, and the text shown is ours.
    provider = provider_for(stub, "refuse")
    result = run_pipeline("I feel like everything is hopeless lately", "en", CARDS, provider)
    assert result.status == "refused"
    assert result.guard.category == "self_harm"
    assert "1323" in (result.guard.message or "")
    assert result.tarot_reading is None
    assert len(stub.bodies("refuse")) == 1


def test_no_authorization_header_without_a_key(stub):
    provider = provider_for(stub, "valid", api_key=None)
    provider.guard("Will my exam go well?", "en")
    assert stub.requests[-1]["authorization"] is None


def settings(**overrides) -> Settings:
    values = dict(supabase_url="http://127.0.0.1:1", supabase_anon_key="a",
                  supabase_service_role_key="s", supabase_jwt_secret="j")
    values.update(overrides)
    # model_validate: only these values, never the environment of the test run.
    return Settings.model_validate(values)


def test_build_provider_reads_the_llm_settings(stub):
    provider = build_provider(settings(llm_provider="openai", llm_base_url=f"{stub.url}/valid/v1",
                                       llm_model="stub-model", llm_api_key="sk-from-env",
                                       llm_timeout_seconds=4))
    assert provider.name == "openai:stub-model"
    provider.guard("Will my exam go well?", "en")
    assert stub.requests[-1]["authorization"] == "Bearer sk-from-env"
    assert build_provider(settings()).name == "offline"


def test_build_provider_fails_loudly_when_misconfigured():
    with pytest.raises(ConfigError, match="LLM_BASE_URL"):
        build_provider(settings(llm_provider="openai", llm_model="m"))
    with pytest.raises(ConfigError, match="LLM_PROVIDER"):
        build_provider(settings(llm_provider="magic"))


def test_an_injected_client_is_used(stub):
    client = httpx.Client(timeout=5.0)
    provider = OpenAICompatibleProvider(base_url=f"{stub.url}/valid/v1", model="stub-model",
                                        client=client)
    provider.analyse("Will I find love this year?", "en")
    provider.close()
    assert client.is_closed
