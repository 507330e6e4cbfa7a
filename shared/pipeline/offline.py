"""The offline reader: a deterministic reading written from the deck, with no network.

The same question, locale and cards always give the same reading: phrasing variants are chosen
from a hash of those inputs, never from a random generator. It reads the meaning of the analysed
topic (love, work, money, health or general) and writes in the requested locale.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from shared.deck.models import Locale, Spread, Topic
from shared.pipeline.analysis import analyse_question
from shared.pipeline.guard import normalize_question, screen_question
from shared.pipeline.models import (
    GuardResult,
    QuestionAnalysis,
    ResolvedCard,
    TarotReading,
    TimeFrame,
)

TONE_SCORE = {"positive": 1.0, "neutral": 0.0, "challenging": -1.0}
YES_NO_SCORE = {"yes": 1.0, "maybe": 0.0, "no": -1.0}

TOPIC_LABEL: dict[Topic, dict[Locale, str]] = {
    "general": {"th": "ภาพรวมชีวิต", "en": "your life in general"},
    "love": {"th": "ความรัก", "en": "love"},
    "work": {"th": "การงาน", "en": "work"},
    "money": {"th": "การเงิน", "en": "money"},
    "health": {"th": "สุขภาพ", "en": "health"},
}
TIME_LABEL: dict[TimeFrame, dict[Locale, str]] = {
    "today": {"th": "วันนี้", "en": "today"},
    "this_week": {"th": "สัปดาห์นี้", "en": "this week"},
    "this_month": {"th": "เดือนนี้", "en": "this month"},
    "this_year": {"th": "ปีนี้", "en": "this year"},
    "near_future": {"th": "ช่วงเวลาอันใกล้", "en": "the near future"},
    "long_term": {"th": "ระยะยาว", "en": "the longer term"},
}
TIME_SENTENCE: dict[Locale, str] = {
    "th": "ไพ่ชุดนี้มองไปที่{when}",
    "en": "The reading focuses on {when}.",
}
ORIENTATION_LABEL = {
    "upright": {"th": "ตั้งตรง", "en": "upright"},
    "reversed": {"th": "กลับหัว", "en": "reversed"},
}
CARD_INTROS: dict[Locale, tuple[str, ...]] = {
    "en": (
        "In the {pos} position, {name} ({orient}) speaks of {focus}.",
        "For {focus}, you drew {name} ({orient}).",
        "{name} ({orient}) sits in the {pos} position, showing {focus}.",
    ),
    "th": (
        "ตำแหน่ง{pos} คุณได้ไพ่{name} ({orient}) ซึ่งสะท้อน{focus}",
        "ไพ่{name} ({orient}) ในตำแหน่ง{pos} บอกเล่าถึง{focus}",
        "สำหรับ{focus} ไพ่ที่ออกมาคือ{name} ({orient})",
    ),
}
OVERALL: dict[str, dict[Locale, str]] = {
    "bright": {"th": "ไปในทางที่สดใสและเป็นใจ", "en": "towards a bright and supportive outlook"},
    "mixed": {"th": "มีทั้งแรงหนุนและบทเรียนปะปนกัน", "en": "towards a mix of support and lessons"},
    "difficult": {"th": "ไปในทางที่ท้าทาย ต้องใช้ความอดทนและสติ",
                  "en": "towards a challenging passage that asks for patience and care"},
}
YES_NO_ANSWER: dict[str, dict[Locale, str]] = {
    "yes": {"th": "คำตอบของไพ่โน้มเอียงไปทาง \"ใช่\"", "en": "The cards lean towards yes."},
    "no": {"th": "คำตอบของไพ่โน้มเอียงไปทาง \"ไม่ใช่\" หรือ \"ยังไม่ใช่ตอนนี้\"",
           "en": "The cards lean towards no, or not yet."},
    "open": {"th": "คำตอบยังไม่ชัดเจน ผลลัพธ์ขึ้นอยู่กับการตัดสินใจของคุณเองมาก",
             "en": "The answer is still open; it depends a great deal on your own choices."},
}
CLOSERS: dict[str, dict[Locale, tuple[str, ...]]] = {
    "bright": {
        "en": ("Move forward with confidence, and stay grounded while you do.",
               "Trust the momentum, and share your good fortune with the people around you."),
        "th": ("ก้าวไปข้างหน้าอย่างมั่นใจ แต่อย่าลืมรักษาความติดดินไว้",
               "เชื่อในจังหวะที่ดีนี้ และแบ่งปันสิ่งดี ๆ ให้คนรอบตัว"),
    },
    "mixed": {
        "en": ("Take one practical step at a time and keep checking in with yourself.",
               "Keep what is working, adjust what is not, and give things a little time."),
        "th": ("ค่อย ๆ ก้าวทีละขั้นอย่างเป็นรูปธรรม และหมั่นถามใจตัวเองอยู่เสมอ",
               "รักษาสิ่งที่ไปได้ดี ปรับสิ่งที่ยังไม่ลงตัว และให้เวลากับมันสักหน่อย"),
    },
    "difficult": {
        "en": ("Be gentle with yourself: hard cards describe a passage, not a verdict.",
               "Lean on people you trust; you do not have to face this stretch alone."),
        "th": ("ใจดีกับตัวเองให้มาก ไพ่ที่หนักหน่วงบอกถึงช่วงเวลาที่ต้องผ่าน ไม่ใช่คำตัดสิน",
               "พึ่งพาคนที่คุณไว้ใจ คุณไม่จำเป็นต้องผ่านช่วงนี้ไปคนเดียว"),
    },
}
REMINDER: dict[Locale, str] = {
    "en": "The cards show tendencies, not fixed fate; your choices shape what happens.",
    "th": "ไพ่บอกแนวโน้ม ไม่ใช่โชคชะตาที่ตายตัว การเลือกของคุณคือสิ่งที่กำหนดผลลัพธ์",
}


def _digest(question: str, locale: Locale, cards: Sequence[ResolvedCard]) -> bytes:
    key = "|".join(
        [normalize_question(question), locale]
        + [f"{c.drawn.position}:{c.drawn.card_id}:{c.drawn.orientation}" for c in cards]
    )
    return hashlib.sha256(key.encode("utf-8")).digest()


def _pick(options: Sequence[str], digest: bytes, slot: int) -> str:
    return options[digest[slot % len(digest)] % len(options)]


def _card_score(card: ResolvedCard, table: dict[str, float], value: str) -> float:
    # Reversed cards soften the upright leaning and ease the challenging ones.
    score = table[value]
    return score if card.drawn.orientation == "upright" else -0.5 * score


def _overall(cards: Sequence[ResolvedCard]) -> str:
    average = sum(_card_score(c, TONE_SCORE, c.card.tone) for c in cards) / len(cards)
    if average >= 0.34:
        return "bright"
    if average <= -0.34:
        return "difficult"
    return "mixed"


def _yes_no(cards: Sequence[ResolvedCard]) -> str:
    # The last card (the outcome or future) weighs double.
    total = sum(
        _card_score(c, YES_NO_SCORE, c.card.yes_no) * (2 if i == len(cards) - 1 else 1)
        for i, c in enumerate(cards)
    )
    if total >= 1:
        return "yes"
    if total <= -1:
        return "no"
    return "open"


def _join(parts: Sequence[str]) -> str:
    # Thai separates sentences with a space and no full stop; English sentences carry theirs.
    return " ".join(p for p in parts if p)


class OfflineReader:
    """`ReadingProvider` that needs nothing but the deck."""

    name = "offline"

    def guard(self, question: str, locale: Locale) -> GuardResult:
        return screen_question(question, locale)

    def analyse(self, question: str, locale: Locale) -> QuestionAnalysis:
        return analyse_question(question, locale)

    def _interpret(self, card: ResolvedCard, locale: Locale, topic: Topic, digest: bytes) -> str:
        orientation = card.drawn.orientation
        intro = _pick(CARD_INTROS[locale], digest, card.drawn.position).format(
            pos=card.position.name.get(locale),
            name=card.name(locale),
            orient=ORIENTATION_LABEL[orientation][locale],
            focus=card.position.focus.get(locale),
        )
        if intro[0].islower():
            intro = intro[0].upper() + intro[1:]
        meaning = card.card.meaning(orientation, topic).get(locale)
        keywords = card.card.keywords.get(locale)[:3]
        sep = " " if locale == "th" else ", "
        if orientation == "upright":
            themes = ("ประเด็นสำคัญ: " if locale == "th" else "Key themes: ") + sep.join(keywords)
        elif locale == "th":
            themes = f"เมื่อกลับหัว พลังของ{keywords[0]}และ{keywords[1]}อาจถูกปิดกั้น ล่าช้า หรือหันเข้าหาตัวเอง"
        else:
            themes = (f"Reversed, its themes of {keywords[0]} and {keywords[1]} may be blocked, "
                      "delayed or turned inward.")
        if locale == "en" and not themes.endswith("."):
            themes += "."
        return _join([intro, meaning, themes])

    def read(
        self,
        question: str,
        locale: Locale,
        analysis: QuestionAnalysis,
        spread: Spread,
        cards: Sequence[ResolvedCard],
    ) -> TarotReading:
        digest = _digest(question, locale, cards)
        topic = analysis.topic
        reading_cards = [
            c.read_as(locale, self._interpret(c, locale, topic, digest)) for c in cards
        ]
        overall = _overall(cards)
        last = cards[-1]
        lineup = ("; " if locale == "en" else " ").join(
            f"{c.position.name.get(locale)}: {c.name(locale)} "
            f"({ORIENTATION_LABEL[c.drawn.orientation][locale]})"
            for c in cards
        )
        first, second = last.card.keywords.get(locale)[:2]
        if locale == "th":
            summary_parts = [
                f"การเปิดไพ่แบบ{spread.name.th} สำหรับคำถามเรื่อง{TOPIC_LABEL[topic]['th']} "
                f"ไพ่โดยรวมชี้{OVERALL[overall]['th']}",
                f"ไพ่ที่ได้คือ {lineup}",
                f"ไพ่ใบสุดท้ายคือ{last.name('th')} ชี้ให้เห็นเรื่อง{first}และ{second}",
            ]
        else:
            summary_parts = [
                f"{spread.name.en} for your question about {TOPIC_LABEL[topic]['en']}: "
                f"the cards point {OVERALL[overall]['en']} ({lineup}).",
                f"The final card, {last.name('en')}, brings {first} and {second} to the fore.",
            ]
        if analysis.time_frame != "unspecified":
            when = TIME_LABEL[analysis.time_frame][locale]
            summary_parts.insert(1, TIME_SENTENCE[locale].format(when=when))
        if analysis.intent == "yes_no":
            summary_parts.append(YES_NO_ANSWER[_yes_no(cards)][locale])
        advice_card = cards[spread.advice_index]
        if locale == "th":
            advice_lead = (f"คำแนะนำจากไพ่{advice_card.name('th')} "
                           f"({ORIENTATION_LABEL[advice_card.drawn.orientation]['th']}): ")
        else:
            advice_lead = (f"Advice from {advice_card.name('en')} "
                           f"({ORIENTATION_LABEL[advice_card.drawn.orientation]['en']}): ")
        advice_meaning = advice_card.card.meaning(advice_card.drawn.orientation, topic).get(locale)
        advice = _join([
            advice_lead + advice_meaning,
            _pick(CLOSERS[overall][locale], digest, 7),
            REMINDER[locale],
        ])
        return TarotReading(cards=reading_cards, summary=_join(summary_parts),
                            advice=advice)
