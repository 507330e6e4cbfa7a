"""The offline reader: deterministic, topic-aware, bilingual readings from the deck."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared.deck import Locale, get_deck
from shared.pipeline import (
    PROMPT_VERSION,
    SCHEMA_VERSION,
    DrawnCard,
    InvalidPipelineInput,
    OfflineReader,
    run_pipeline,
)
from shared.pipeline.analysis import analyse_question

THAI = re.compile("[\u0e00-\u0e7f]")
THREE = [
    DrawnCard(position=0, card_id="major-00-the-fool", orientation="upright"),
    DrawnCard(position=1, card_id="cups-02-two", orientation="reversed"),
    DrawnCard(position=2, card_id="pentacles-10-ten", orientation="upright"),
]
FIVE = [
    DrawnCard(position=0, card_id="major-16-the-tower", orientation="upright"),
    DrawnCard(position=1, card_id="swords-09-nine", orientation="upright"),
    DrawnCard(position=2, card_id="wands-10-ten", orientation="reversed"),
    DrawnCard(position=3, card_id="major-14-temperance", orientation="upright"),
    DrawnCard(position=4, card_id="major-17-the-star", orientation="upright"),
]


def read(question, locale="th", cards=THREE):
    return run_pipeline(question, locale, cards, OfflineReader())


def without_timing(result):
    return result.model_dump(exclude={"processing_time_ms"})


def test_same_inputs_give_the_same_reading():
    first = read("งานใหม่ที่สมัครไว้จะได้ไหม")
    second = read("งานใหม่ที่สมัครไว้จะได้ไหม")
    assert without_timing(first) == without_timing(second)
    assert first.tarot_reading.summary


def test_card_order_in_the_input_does_not_change_the_reading():
    shuffled = [THREE[2], THREE[0], THREE[1]]
    assert without_timing(read("Will I be happy?", "en", shuffled)) == without_timing(
        read("Will I be happy?", "en"))


def test_different_cards_give_a_different_reading():
    other = [THREE[0], THREE[1], DrawnCard(position=2, card_id="major-19-the-sun",
                                           orientation="upright")]
    assert read("Will I be happy?", "en").tarot_reading != read("Will I be happy?", "en",
                                                                other).tarot_reading


@pytest.mark.parametrize(("question", "topic"), [
    ("ความรักกับแฟนคนนี้จะไปต่อได้ไหม", "love"),
    ("จะได้เลื่อนตำแหน่งที่ทำงานไหม", "work"),
    ("เดือนนี้จะมีเงินพอใช้หนี้ไหม", "money"),
    ("สุขภาพช่วงนี้ต้องระวังอะไร", "health"),
    ("ชีวิตฉันช่วงนี้จะเป็นอย่างไร", "general"),
    ("Will my boyfriend propose?", "love"),
    ("Should I invest my savings in stocks?", "money"),
])
def test_the_reading_uses_the_meaning_for_the_question_topic(question, topic):
    locale: Locale = "th" if THAI.search(question) else "en"
    result = read(question, locale)
    assert result.question_analysis.topic == topic
    deck = get_deck()
    for drawn, card in zip(THREE, result.tarot_reading.cards, strict=True):
        meaning = deck.card(drawn.card_id).meaning(drawn.orientation, topic).get(locale)
        assert meaning in card.interpretation


def test_love_and_work_questions_with_the_same_cards_read_differently():
    love = read("Will my relationship last?", "en").tarot_reading
    work = read("Will my career take off?", "en").tarot_reading
    assert love.cards[0].interpretation != work.cards[0].interpretation
    assert "romance" in love.cards[0].interpretation
    assert "job" in work.cards[0].interpretation


def test_thai_locale_reads_in_thai_and_english_locale_in_english():
    thai = read("Will I find love this year?", "th").tarot_reading
    english = read("Will I find love this year?", "en").tarot_reading
    for text in [thai.summary, thai.advice, *(c.interpretation for c in thai.cards)]:
        assert THAI.search(text)
    for text in [english.summary, english.advice, *(c.interpretation for c in english.cards)]:
        assert text.isascii()
    assert thai.cards[0].name == "คนโง่" and english.cards[0].name == "The Fool"
    assert thai.cards[0].position_name == "อดีต" and english.cards[0].position_name == "Past"


def test_five_card_reading_uses_the_five_card_spread_and_its_advice_position():
    result = read("What should I do about my job?", "en", FIVE)
    reading = result.tarot_reading
    spread = get_deck().spread(5)
    assert [c.position_name for c in reading.cards] == [p.name.en for p in spread.positions]
    assert [c.card_id for c in reading.cards] == [c.card_id for c in FIVE]
    assert reading.advice.startswith("Advice from Temperance (upright)")
    assert result.question_analysis.intent == "advice"


def test_yes_no_questions_get_a_leaning():
    bright = [DrawnCard(position=i, card_id=cid, orientation="upright")
              for i, cid in enumerate(["major-19-the-sun", "cups-09-nine", "major-21-the-world"])]
    dark = [DrawnCard(position=i, card_id=cid, orientation="upright")
            for i, cid in enumerate(["major-16-the-tower", "swords-10-ten", "swords-03-three"])]
    assert "lean towards yes" in read("Will I pass the exam?", "en", bright).tarot_reading.summary
    assert "lean towards no" in read("Will I pass the exam?", "en", dark).tarot_reading.summary
    assert "ใช่" in read("จะสอบผ่านไหม", "th", bright).tarot_reading.summary


@pytest.mark.parametrize(("question", "intent", "time_frame"), [
    ("แฟนจะกลับมาไหมในเดือนนี้", "yes_no", "this_month"),
    ("ควรทำอย่างไรกับงานที่ไม่ชอบ", "advice", "unspecified"),
    ("ความรักของฉันในอนาคตจะเป็นอย่างไร", "prediction", "long_term"),
    ("Will I meet someone this week?", "yes_no", "this_week"),
    ("What should I focus on today?", "advice", "today"),
    ("Tell me about my love life", "insight", "unspecified"),
])
def test_question_analysis_finds_intent_and_time_frame(question, intent, time_frame):
    analysis = analyse_question(question, "th")
    assert analysis.intent == intent
    assert analysis.time_frame == time_frame


def test_thai_words_inside_longer_words_are_not_double_counted():
    # "แต่งงาน" (marriage) contains "งาน" (work) but is a love question.
    analysis = analyse_question("ปีหน้าจะได้แต่งงานไหม", "th")
    assert analysis.topic == "love"
    assert "แต่งงาน" in analysis.keywords and "งาน" not in analysis.keywords


def test_result_records_versions_and_a_positive_processing_time():
    result = read("Will I be happy?", "en")
    assert result.prompt_version == PROMPT_VERSION
    assert result.schema_version == SCHEMA_VERSION
    assert result.processing_time_ms >= 1
    assert result.provider == "offline"
    stored = result.model_dump(mode="json")
    assert set(stored["tarot_reading"]) == {"cards", "summary", "advice"}
    assert set(stored["tarot_reading"]["cards"][0]) == {
        "position", "position_name", "card_id", "name", "orientation", "interpretation"}


@pytest.mark.parametrize(("cards", "message"), [
    (THREE[:2], "3 or 5"),
    ([THREE[0], THREE[1], THREE[1].model_copy(update={"position": 2})], "twice"),
    ([THREE[0], THREE[1], THREE[2].model_copy(update={"position": 4})], "positions"),
    ([THREE[0], THREE[1], THREE[2].model_copy(update={"card_id": "cups-15-joker"})], "unknown"),
])
def test_cards_that_do_not_fit_the_deck_are_rejected_as_permanent(cards, message):
    with pytest.raises(InvalidPipelineInput, match=message) as caught:
        read("Will I be happy?", "en", cards)
    assert caught.value.retryable is False


def test_importing_the_pipeline_does_not_import_httpx():
    code = "import sys, shared.pipeline; assert 'httpx' not in sys.modules, 'httpx imported'"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert completed.returncode == 0, completed.stderr
