"""The guard: caring refusals for self-harm, refusals for topics the app must not answer,
length and language checks, and ordinary questions let through."""

from __future__ import annotations

import pytest

from shared.pipeline import DrawnCard, OfflineReader, run_pipeline
from shared.pipeline.guard import normalize_question, screen_question


def text(value: str | None) -> str:
    assert value is not None
    return value

CARDS = [
    DrawnCard(position=0, card_id="major-17-the-star", orientation="upright"),
    DrawnCard(position=1, card_id="cups-05-five", orientation="upright"),
    DrawnCard(position=2, card_id="pentacles-06-six", orientation="reversed"),
]


@pytest.mark.parametrize("question", [
    "ช่วงนี้เหนื่อยมาก อยากตาย ไม่อยากอยู่แล้ว",
    "ควรฆ่าตัวตายดีไหม",
    "รู้สึกไม่อยากมีชีวิตอยู่ต่อ ไพ่จะบอกอะไร",
    "อยากทำร้ายตัวเอง",
])
def test_guard_refuses_self_harm_in_thai_with_a_caring_message_and_the_1323_hotline(question):
    verdict = screen_question(question, "th")
    assert verdict.allowed is False
    assert verdict.category == "self_harm"
    assert "1323" in text(verdict.message)
    assert "สายด่วนสุขภาพจิต" in text(verdict.message)
    assert "ไม่จำเป็นต้องแบกมันไว้คนเดียว" in text(verdict.message)


@pytest.mark.parametrize("question", [
    "I want to kill myself, will it get better?",
    "Should I end my life?",
    "I have been thinking about suicide",
    "i dont want to live anymore",
    "Is self-harm the only way to cope?",
])
def test_guard_refuses_self_harm_in_english_with_a_caring_message_and_the_1323_hotline(question):
    verdict = screen_question(question, "en")
    assert verdict.allowed is False
    assert verdict.category == "self_harm"
    assert "1323" in text(verdict.message)
    assert "you do not have to carry it alone" in text(verdict.message)


def test_refusal_is_written_in_the_language_of_the_question():
    assert "สายด่วน" in text(screen_question("ฉันอยากตาย", "en").message)
    assert "hotline" in text(screen_question("I want to die", "th").message)


@pytest.mark.parametrize(("question", "locale"), [
    ("ความรักของฉันกับแฟนจะไปรอดไหม", "th"),
    ("เดือนนี้การเงินจะดีขึ้นไหม", "th"),
    ("ใครขโมยกระเป๋าเงินของฉันไป", "th"),
    ("แฟนจะโกงฉันไหม", "th"),
    ("สุขภาพของแม่ปีนี้เป็นอย่างไร", "th"),
    ("Should I end my relationship with him?", "en"),
    ("Will I get the job after this interview?", "en"),
    ("Who stole my bike and will I get it back?", "en"),
    ("How can I take better care of my health this year?", "en"),
])
def test_guard_allows_ordinary_questions(question, locale):
    verdict = screen_question(question, locale)
    assert verdict.allowed is True
    assert verdict.category == "ok"
    assert verdict.message is None


@pytest.mark.parametrize(("question", "category"), [
    ("ฉันเป็นมะเร็งไหม", "medical"),
    ("ควรหยุดกินยาความดันไหม", "medical"),
    ("Do I have cancer?", "medical"),
    ("Should I stop taking my medication?", "medical"),
    ("อยากขโมยเงินจากบริษัท จะรอดไหม", "illegal"),
    ("สอนแฮกเฟซแฟนเก่าหน่อย", "illegal"),
    ("How do I steal a car without getting caught?", "illegal"),
    ("How to make a bomb", "illegal"),
])
def test_guard_refuses_topics_the_app_must_not_answer(question, category):
    verdict = screen_question(question, "en")
    assert verdict.allowed is False
    assert verdict.category == category
    assert verdict.message


def test_guard_checks_length_and_language():
    assert screen_question("?", "th").category == "too_short"
    assert screen_question("ก" * 501, "th").category == "too_long"
    assert screen_question("ก" * 500, "th").allowed is True
    assert screen_question("我的爱情会怎么样呢", "th").category == "unsupported_language"
    assert screen_question("Любовь будет?", "en").category == "unsupported_language"
    # A Thai question with an English word in it is fine.
    assert screen_question("งาน marketing ใหม่จะดีไหม", "th").allowed is True


def test_normalize_question_folds_thai_typing_variants_and_invisible_characters():
    assert normalize_question("เเฟน\u200bจะกลับมาไหม ") == "แฟนจะกลับมาไหม"
    assert normalize_question("ทํางาน") == "ทำงาน"
    assert normalize_question("  love \n\n life ") == "love life"


class RecordingProvider(OfflineReader):
    """The offline reader, recording which steps the pipeline asked for."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def guard(self, question, locale):
        self.calls.append("guard")
        return super().guard(question, locale)

    def analyse(self, question, locale):
        self.calls.append("analyse")
        return super().analyse(question, locale)

    def read(self, question, locale, analysis, spread, cards):
        self.calls.append("read")
        return super().read(question, locale, analysis, spread, cards)


def test_pipeline_refuses_self_harm_before_any_provider_step():
    provider = RecordingProvider()
    result = run_pipeline("ไม่อยากมีชีวิตอยู่แล้ว", "th", CARDS, provider)
    assert result.status == "refused"
    assert result.refused is True
    assert result.guard.category == "self_harm"
    assert "1323" in text(result.guard.message)
    assert result.question_analysis is None and result.tarot_reading is None
    assert provider.calls == []


def test_pipeline_runs_all_three_steps_for_an_allowed_question():
    provider = RecordingProvider()
    result = run_pipeline("Will my business grow this year?", "en", CARDS, provider)
    assert result.status == "completed"
    assert provider.calls == ["guard", "analyse", "read"]
