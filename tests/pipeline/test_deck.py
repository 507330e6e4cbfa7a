"""The deck data file: 78 complete, bilingual cards and the 3- and 5-card spreads."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from shared.deck import TOPICS, DeckError, get_deck, load_deck
from shared.deck.loader import DATA_DIR

THAI = re.compile(r"[\u0E00-\u0E7F]")


def all_texts(deck):
    for card in deck.cards:
        yield card.name
        for side in (card.upright, card.reversed):
            for topic in TOPICS:
                yield side.for_topic(topic)
    for spread in deck.spreads:
        yield spread.name
        for position in spread.positions:
            yield position.name
            yield position.focus


def test_deck_has_78_cards_with_22_majors_and_14_per_suit():
    deck = get_deck()
    counts = Counter(card.suit for card in deck.cards)
    assert len(deck.cards) == 78
    assert counts == {"major": 22, "wands": 14, "cups": 14, "swords": 14, "pentacles": 14}


def test_card_ids_are_unique_and_stable():
    deck = get_deck()
    ids = [card.id for card in deck.cards]
    assert len(set(ids)) == 78
    # Ids are stored in jobs and readings: these must never change.
    for known in ("major-00-the-fool", "major-21-the-world", "cups-01-ace", "wands-11-page",
                  "swords-14-king", "pentacles-10-ten"):
        assert deck.card(known).id == known
    assert deck.card("major-13-death").name.en == "Death"
    with pytest.raises(KeyError):
        deck.card("major-22-nothing")


def test_every_thai_text_has_thai_script_and_every_english_text_is_latin():
    deck = get_deck()
    for text in all_texts(deck):
        assert THAI.search(text.th), text
        assert not THAI.search(text.en), text
        assert text.en.isascii(), text
    for card in deck.cards:
        assert card.keywords.th and card.keywords.en
        assert all(THAI.search(k) for k in card.keywords.th)


def test_every_meaning_is_written_out_and_distinct():
    deck = get_deck()
    seen: Counter[str] = Counter()
    for card in deck.cards:
        for orientation in ("upright", "reversed"):
            for topic in TOPICS:
                meaning = card.meaning(orientation, topic)
                assert len(meaning.en.split()) >= 4, (card.id, orientation, topic)
                assert len(meaning.th) >= 15, (card.id, orientation, topic)
                seen[meaning.en] += 1
                seen[meaning.th] += 1
    assert len(seen) == 78 * 2 * len(TOPICS) * 2
    assert max(seen.values()) == 1


def test_cards_carry_a_yes_no_leaning_and_a_tone():
    deck = get_deck()
    assert {card.yes_no for card in deck.cards} == {"yes", "no", "maybe"}
    assert {card.tone for card in deck.cards} == {"positive", "neutral", "challenging"}
    assert deck.card("major-19-the-sun").yes_no == "yes"
    assert deck.card("major-16-the-tower").tone == "challenging"


@pytest.mark.parametrize("card_count", [3, 5])
def test_spreads_have_bilingual_positions_for_3_and_5_cards(card_count):
    spread = get_deck().spread(card_count)
    assert [p.index for p in spread.positions] == list(range(card_count))
    assert len({p.name.en for p in spread.positions}) == card_count
    assert len({p.name.th for p in spread.positions}) == card_count
    assert 0 <= spread.advice_index < card_count


def test_get_deck_loads_once():
    assert get_deck() is get_deck()


def copy_data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def test_loader_rejects_a_deck_missing_a_card(tmp_path):
    data = copy_data(tmp_path)
    cups = json.loads((data / "cups.json").read_text(encoding="utf-8"))
    cups["cards"].pop()
    (data / "cups.json").write_text(json.dumps(cups, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DeckError, match="78"):
        load_deck(data)


def test_loader_rejects_english_in_a_thai_field_and_empty_text(tmp_path):
    data = copy_data(tmp_path)
    wands = json.loads((data / "wands.json").read_text(encoding="utf-8"))
    wands["cards"][0]["upright"]["love"]["th"] = "New passion"
    (data / "wands.json").write_text(json.dumps(wands, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DeckError, match="Thai"):
        load_deck(data)
    wands["cards"][0]["upright"]["love"] = {"th": "ความรัก", "en": "  "}
    (data / "wands.json").write_text(json.dumps(wands, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DeckError, match="empty"):
        load_deck(data)


def test_loader_rejects_duplicate_ids(tmp_path):
    data = copy_data(tmp_path)
    swords = json.loads((data / "swords.json").read_text(encoding="utf-8"))
    swords["cards"][1] = dict(swords["cards"][0])
    (data / "swords.json").write_text(json.dumps(swords, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DeckError):
        load_deck(data)
