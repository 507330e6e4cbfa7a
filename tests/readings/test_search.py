"""search_readings and reading_status as the app calls them: RPC through the REST gateway with
the user's access token, so RLS and auth.uid() apply."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from postgrest.exceptions import APIError

from tests.readings.conftest import api_key, make_user, user_token

BASE = datetime(2026, 11, 1, tzinfo=UTC)
CARDS = [{"position": i, "card_id": f"major-0{i}-x", "name": "x", "orientation": "upright"}
         for i in range(3)]


def add_reading(sql, user_id, question: str, minute: int, locale: str = "th") -> uuid.UUID:
    row = sql.execute(
        "insert into public.tarot_readings (user_id, question, question_locale, card_count,"
        " cards, tarot_reading, created_at) values (%s, %s, %s, 3, %s, %s, %s) returning id",
        (user_id, question, locale, json.dumps(CARDS), json.dumps({"summary": question}),
         BASE + timedelta(minutes=minute))).fetchone()
    return row["id"]


def search(database, user_id, query: str, **kwargs: Any) -> list[dict[str, Any]]:
    params = {"query": query, **kwargs}
    return database.for_user(user_token(user_id)).rpc("search_readings", params).execute().data


def questions(rows) -> list[str]:
    return [r["question"] for r in rows]


@pytest.fixture
def library(sql):
    """One user's Thai and English questions, and another user's look-alikes."""
    user, other = make_user(sql), make_user(sql)
    texts = [
        "ความรักของฉันจะเป็นอย่างไร",          # รัก inside a compound
        "รัก ครั้งใหม่ จะดีไหม",                # รัก as a word
        "การรักษาตัวครั้งนี้จะหายไหม",          # รัก inside รักษา
        "แต่งงานปีหน้าดีไหม",                   # งาน inside แต่งงาน
        "งาน ใหม่ ที่สมัครไว้จะได้ไหม",          # งาน as a word
        "เรื่องเงิน\u200bเดือนหน้า",             # a zero-width space inside
        "ทํางานที่เดิมต่อดีไหม",                 # SARA AM typed as nikhahit + sara aa
        "Will my NEW job work out?",
        "Should I change jobs this year?",
        "Is 100% of my effort_enough?",
    ]
    for minute, text in enumerate(texts):
        add_reading(sql, user, text, minute)
    add_reading(sql, other, "รัก งาน เงิน job 100%", 100)
    return user, other


def test_thai_terms_match_inside_compounds_and_whole_words_rank_first(database, library):
    user, _ = library

    rows = search(database, user, "รัก")

    assert questions(rows) == [
        "รัก ครั้งใหม่ จะดีไหม",
        "การรักษาตัวครั้งนี้จะหายไหม",
        "ความรักของฉันจะเป็นอย่างไร",
    ]
    assert [r["whole_word"] for r in rows] == [True, False, False]


def test_a_word_inside_another_word_is_found_after_the_word_itself(database, library):
    user, _ = library

    assert questions(search(database, user, "งาน")) == [
        "งาน ใหม่ ที่สมัครไว้จะได้ไหม",
        "ทํางานที่เดิมต่อดีไหม",
        "แต่งงานปีหน้าดีไหม",
    ]


def test_every_term_must_match(database, library):
    user, _ = library

    assert questions(search(database, user, "งาน   ใหม่")) == ["งาน ใหม่ ที่สมัครไว้จะได้ไหม"]
    assert search(database, user, "งาน เงิน") == []


def test_thai_spelling_variants_and_invisible_characters_are_normalized(database, library):
    user, _ = library

    assert questions(search(database, user, "ทำงาน")) == ["ทํางานที่เดิมต่อดีไหม"]
    assert questions(search(database, user, "เงินเดือน")) == ["เรื่องเงิน\u200bเดือนหน้า"]
    assert questions(search(database, user, "เงิน\u200b")) == ["เรื่องเงิน\u200bเดือนหน้า"]


def test_english_search_ignores_case_and_ranks_whole_words_first(database, library):
    user, _ = library

    rows = search(database, user, "JOB")

    assert questions(rows) == ["Will my NEW job work out?", "Should I change jobs this year?"]
    assert questions(search(database, user, "new job")) == ["Will my NEW job work out?"]


def test_like_wildcards_in_a_query_match_only_themselves(database, library):
    user, _ = library

    assert questions(search(database, user, "100%")) == ["Is 100% of my effort_enough?"]
    assert questions(search(database, user, "100_")) == []
    assert questions(search(database, user, "%")) == ["Is 100% of my effort_enough?"]
    assert questions(search(database, user, "_")) == ["Is 100% of my effort_enough?"]
    assert search(database, user, "\\") == []


def test_other_users_readings_are_never_returned(database, library):
    user, other = library

    for query in ("รัก", "งาน", "job", "100%", ""):
        found = search(database, user, query)
        assert all(r["question"] != "รัก งาน เงิน job 100%" for r in found)
    assert questions(search(database, other, "job")) == ["รัก งาน เงิน job 100%"]
    with pytest.raises(APIError) as refused:
        database.for_user(api_key("anon")).rpc("search_readings", {"query": "job"}).execute()
    assert refused.value.code == "42501"


def test_pages_stay_stable_while_new_readings_arrive(sql, database):
    user = make_user(sql)
    # 25 matches, whole-word (every third) and inside-a-word ones interleaved; two share a time.
    originals: dict[str, tuple[bool, int, str]] = {}
    for i in range(25):
        whole = i % 3 == 0
        minute = 4 if i == 5 else i
        rid = str(add_reading(sql, user, f"งาน ที่ {i}" if whole else f"แต่งงาน {i}", minute))
        originals[rid] = (whole, minute, rid)
    add_reading(sql, user, "เรื่องอื่น", 30)

    seen: list[str] = []
    cursor: dict[str, Any] = {}
    for page in range(20):
        rows = search(database, user, "งาน", page_size=4, **cursor)
        if not rows:
            break
        seen += [r["id"] for r in rows]
        cursor = {"before_created_at": rows[-1]["created_at"], "before_id": rows[-1]["id"]}
        # Newer readings of both ranks arrive between pages.
        add_reading(sql, user, f"งาน ใหม่ {page}", 200 + page)
        add_reading(sql, user, f"แต่งงาน ใหม่ {page}", 300 + page)

    def newest_first(whole: bool) -> list[str]:
        keys = sorted((v for v in originals.values() if v[0] == whole), reverse=True)
        return [k[2] for k in keys]

    assert len(seen) == len(set(seen))
    assert seen[:9] == newest_first(True)
    assert [rid for rid in seen if rid in originals][9:] == newest_first(False)


def test_a_cursor_must_name_one_of_the_callers_readings(database, library):
    user, other = library
    foreign = search(database, other, "job")[0]

    with pytest.raises(APIError) as refused:
        search(database, user, "job", before_created_at=foreign["created_at"],
               before_id=foreign["id"])
    assert refused.value.code == "MV006"


def test_reading_status_shows_the_own_job_only(sql, database, service):
    from tests.readings.conftest import ask

    user, other = make_user(sql, stars=1), make_user(sql)
    job_id = str(ask(service, user, "งานใหม่").job_id)

    mine = database.for_user(user_token(user)).rpc("reading_status",
                                                   {"job_id": job_id}).execute().data
    theirs = database.for_user(user_token(other)).rpc("reading_status",
                                                      {"job_id": job_id}).execute().data

    assert theirs == []
    assert len(mine) == 1
    status = mine[0]
    assert (status["job_id"], status["status"], status["attempts"]) == (job_id, "queued", 0)
    assert status["reading_id"] is None and status["reading"] is None
    assert len(status["cards"]) == 3
