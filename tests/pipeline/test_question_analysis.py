"""Every question the API accepts gets an analysis the model accepts (the offline reader can
answer it), whatever its words."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.pipeline.analysis import analyse_question
from shared.pipeline.models import QuestionAnalysis
from shared.readings import CreateReadingRequest

LONG_WORD = "long-distance-relationship-across-three-time-zones"


def test_a_hyphenated_word_longer_than_a_keyword_is_split_into_its_words() -> None:
    analysis = analyse_question(f"Will my {LONG_WORD} survive?", "en")
    assert analysis.topic == "love"
    assert {"distance", "relationship", "zones"} <= set(analysis.keywords)
    assert all(len(k) <= 40 for k in analysis.keywords)


def test_a_single_word_longer_than_a_keyword_is_left_out() -> None:
    analysis = analyse_question("a" * 120 + " career", "en")
    assert analysis.keywords == ["career"]


words = st.text(alphabet=st.sampled_from("abcxyz-'กขคงรักงาน"), min_size=1, max_size=80)


@settings(max_examples=300, deadline=None)
@given(st.lists(words, min_size=1, max_size=12).map(" ".join))
def test_every_question_the_api_accepts_has_a_valid_analysis(question: str) -> None:
    request = CreateReadingRequest(question=question[:500] or "x", card_count=3)
    analysis = analyse_question(request.question, "en")
    assert QuestionAnalysis.model_validate(analysis.model_dump()) == analysis
