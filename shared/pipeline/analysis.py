"""Offline question analysis: topic, intent, time frame and keywords from vocabulary rules.

Thai is written without spaces, so topic words are found as substrings, longest first, and each
match is blanked out before shorter words are tried ("แต่งงาน", marriage, must not also count as
"งาน", work).
"""

from __future__ import annotations

import re

from shared.deck.models import Locale, Topic
from shared.pipeline.guard import normalize_question
from shared.pipeline.models import Intent, QuestionAnalysis, TimeFrame

MAX_KEYWORDS = 8
# QuestionAnalysis refuses longer keywords; a question the API accepts must never produce one.
MAX_KEYWORD_CHARS = 40

TOPIC_TERMS: dict[Topic, tuple[str, ...]] = {
    "love": (
        "ความรัก", "รัก", "แฟน", "คนคุย", "เนื้อคู่", "คู่ครอง", "แต่งงาน", "สามี", "ภรรยา", "เมีย",
        "ผัว", "แอบชอบ", "จีบ", "คืนดี", "เลิกกัน", "อกหัก", "โสด", "คู่รัก", "หมั้น",
        "love", "boyfriend", "girlfriend", "partner", "relationship", "crush", "marry", "marriage",
        "wedding", "husband", "wife", "ex", "dating", "romance", "soulmate", "breakup", "single",
    ),
    "work": (
        "งาน", "อาชีพ", "เจ้านาย", "หัวหน้า", "เพื่อนร่วมงาน", "สัมภาษณ์", "เลื่อนตำแหน่ง", "ลาออก",
        "สมัครงาน", "ธุรกิจ", "บริษัท", "โปรเจกต์", "การเรียน", "สอบ", "เรียนต่อ", "มหาวิทยาลัย",
        "job", "work", "career", "boss", "colleague", "interview", "promotion", "resign",
        "business", "company", "project", "exam", "study", "school", "university", "office",
    ),
    "money": (
        "เงิน", "การเงิน", "หนี้", "ลงทุน", "หุ้น", "รายได้", "เงินเดือน", "โบนัส", "ค่าใช้จ่าย",
        "ออม", "กู้", "ร่ำรวย", "รวย", "โชคลาภ", "ซื้อบ้าน", "ซื้อรถ", "คริปโต",
        "money", "finance", "finances", "financial", "debt", "loan", "invest", "investment",
        "stock", "stocks", "crypto", "salary", "income", "bonus", "rich", "wealth", "savings",
        "afford", "budget",
    ),
    "health": (
        "สุขภาพ", "ป่วย", "เจ็บ", "ร่างกาย", "ลดน้ำหนัก", "ออกกำลังกาย", "นอนไม่หลับ", "เครียด",
        "พักผ่อน", "ตั้งครรภ์", "มีลูก",
        "health", "healthy", "sick", "illness", "body", "weight", "diet", "exercise", "fitness",
        "sleep", "stress", "energy", "recover", "recovery", "pregnant", "pregnancy",
    ),
}
# Ties go to the first topic here: love questions are the most common in the product.
TOPIC_ORDER: tuple[Topic, ...] = ("love", "work", "money", "health")

_TERMS = sorted(
    ((term, topic) for topic, terms in TOPIC_TERMS.items() for term in terms),
    key=lambda item: -len(item[0]),
)
_THAI = re.compile("[\u0e00-\u0e7f]")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")

_PREDICTION_PHRASE = re.compile(
    r"(?:จะ)?เป็น(?:อย่างไร|ยังไง|แบบไหน)|\b(?:how|what)\s+will\b|\bwhat\s+is\s+coming\b",
    re.IGNORECASE,
)
_ADVICE = re.compile(
    r"อย่างไร|ยังไง|แบบไหนดี|คำแนะนำ|ควรทำอะไร|ทำอะไรดี"
    r"|\bhow\s+(?:can|do|should)\b|\bwhat\s+(?:should|can)\s+i\b|\badvice\b|\btips?\b",
    re.IGNORECASE,
)
_YES_NO = re.compile(
    r"ไหม|มั้ย|หรือเปล่า|รึเปล่า|หรือไม่|ใช่ไหม|ได้ไหม"
    r"|^(?:will|is|are|does|do|did|should|can|could|would|am|has|have|was|were)\b",
    re.IGNORECASE,
)
_FUTURE = re.compile(r"จะ|อนาคต|\bwill\b|\bgoing\s+to\b|\bfuture\b", re.IGNORECASE)

TIME_FRAMES: tuple[tuple[TimeFrame, re.Pattern[str]], ...] = (
    ("today", re.compile(r"วันนี้|คืนนี้|\btoday\b|\btonight\b", re.IGNORECASE)),
    ("this_week", re.compile(r"สัปดาห์นี้|อาทิตย์นี้|สุดสัปดาห์|\bthis\s+week(?:end)?\b", re.I)),
    ("this_month", re.compile(r"เดือนนี้|\bthis\s+month\b", re.IGNORECASE)),
    ("this_year", re.compile(r"ปีนี้|\bthis\s+year\b", re.IGNORECASE)),
    ("near_future", re.compile(
        r"เร็ว\s*ๆ\s*นี้|ช่วงนี้|เดือนหน้า|สัปดาห์หน้า|อาทิตย์หน้า|\bsoon\b|\bnext\s+(?:week|month)\b"
        r"|\bcoming\s+(?:weeks|months)\b", re.IGNORECASE)),
    ("long_term", re.compile(
        r"อนาคต|ระยะยาว|ปีหน้า|\bfuture\b|\blong[-\s]term\b|\bnext\s+year\b|\bin\s+\w+\s+years\b",
        re.IGNORECASE)),
)

_STOPWORDS = frozenset({
    "the", "and", "for", "with", "about", "will", "would", "should", "could", "can", "does",
    "did", "has", "have", "was", "were", "are", "this", "that", "what", "when", "where",
    "which", "who", "whom", "how", "why", "any", "some", "get", "got", "going", "into", "from",
    "than", "then", "them", "they", "their", "there", "your", "you", "yours", "mine", "our",
    "ours", "his", "her", "its", "not", "but", "just", "also", "very", "much", "many", "more",
    "most", "really", "still", "ever", "soon", "year", "years", "month", "week", "today",
    "tonight",
})


def _topic_hits(text: str) -> tuple[dict[Topic, int], list[str]]:
    remaining = text.lower()
    hits: dict[Topic, int] = dict.fromkeys(TOPIC_ORDER, 0)
    found: list[str] = []
    for term, topic in _TERMS:
        pattern = term if _THAI.search(term) else rf"\b{re.escape(term)}\b"
        count = len(re.findall(pattern, remaining))
        if count:
            hits[topic] += count
            found.append(term)
            remaining = re.sub(pattern, " ", remaining)
    return hits, found


def _topic(hits: dict[Topic, int]) -> Topic:
    best = max(TOPIC_ORDER, key=lambda t: (hits[t], -TOPIC_ORDER.index(t)))
    return best if hits[best] else "general"


def _intent(text: str) -> Intent:
    if _PREDICTION_PHRASE.search(text):
        return "prediction"
    if _ADVICE.search(text):
        return "advice"
    if _YES_NO.search(text):
        return "yes_no"
    if _FUTURE.search(text):
        return "prediction"
    return "insight"


def _time_frame(text: str) -> TimeFrame:
    for frame, pattern in TIME_FRAMES:
        if pattern.search(text):
            return frame
    return "unspecified"


def _latin_words(text: str) -> list[str]:
    """Latin words of 3+ letters; a word too long to be a keyword is split at its hyphens and
    apostrophes ("long-distance-relationship-across-three-time-zones"), and a part still too
    long is left out."""
    words: list[str] = []
    for word in _WORD.findall(text):
        parts = [word] if len(word) <= MAX_KEYWORD_CHARS else re.split(r"['-]+", word)
        words += [p.lower() for p in parts if 3 <= len(p) <= MAX_KEYWORD_CHARS]
    return words


def _keywords(text: str, topic_terms: list[str]) -> list[str]:
    words = list(topic_terms)
    words += _latin_words(text)
    # Thai phrases the asker separated with spaces are meaningful units of their own.
    words += [chunk for chunk in text.split() if _THAI.search(chunk) and 2 <= len(chunk) <= 20]
    result: list[str] = []
    for word in words:
        if word not in _STOPWORDS and word not in result:
            result.append(word)
    return result[:MAX_KEYWORDS]


def analyse_question(question: str, locale: Locale) -> QuestionAnalysis:
    """Deterministic analysis of the question (`locale` does not change the result)."""
    text = normalize_question(question)
    hits, terms = _topic_hits(text)
    return QuestionAnalysis(
        topic=_topic(hits),
        intent=_intent(text),
        time_frame=_time_frame(text),
        keywords=_keywords(text, terms),
    )
