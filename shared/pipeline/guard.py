"""The rule-based guard: length, language and the topics the app must not answer.

It runs before any provider, so a question about self-harm is answered with care and a hotline
even when the LLM is down or would have missed it. The refusal texts live here, not in the LLM:
what a person in crisis reads must not depend on a model's wording.
"""

from __future__ import annotations

import re
import unicodedata

from shared.deck.models import Locale
from shared.pipeline.models import GuardCategory, GuardResult
from shared.rules import MAX_QUESTION_CHARS

MIN_LETTERS = 2

_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_SPACES = re.compile(r"\s+")
_THAI_LETTER = re.compile("[\u0e01-\u0e2e]")
_LATIN_LETTER = re.compile("[A-Za-z]")


def normalize_question(text: str) -> str:
    """NFC, no zero-width characters, the common Thai typing variants folded, single spaces."""
    text = unicodedata.normalize("NFC", text)
    text = _ZERO_WIDTH.sub("", text)
    # Nikhahit + sara aa typed instead of sara am, and two sara e typed instead of sara ae.
    text = text.replace("\u0e4d\u0e32", "\u0e33").replace("\u0e40\u0e40", "\u0e41")
    return _SPACES.sub(" ", text).strip()


def question_language(text: str, fallback: Locale) -> Locale:
    """The language the question is written in (Thai wins when both appear)."""
    if _THAI_LETTER.search(text):
        return "th"
    if _LATIN_LETTER.search(text):
        return "en"
    return fallback


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


_SELF_HARM = _any(
    r"ฆ่าตัว\s*ตาย", r"อยากตาย", r"ไม่อยาก(?:มีชีวิต|อยู่แล้ว|อยู่บนโลก|อยู่ต่อ|ตื่นขึ้นมา)",
    r"จบชีวิต", r"ปลิดชีพ", r"ทำร้ายตัวเอง", r"กรีด(?:ข้อมือ|แขน|ตัวเอง)", r"ผูกคอ",
    r"กินยา(?:ตาย|เกินขนาด|ให้ตาย)", r"(?:กระ)?โดดตึก", r"ลาโลก", r"ตายๆ\s*ไปซะ",
    r"\bsuicid\w*", r"\bkill(?:ing)?\s+my\s*self\b", r"\bend(?:ing)?\s+(?:my\s+(?:own\s+)?life|it\s+all)\b",
    r"\btake\s+my\s+(?:own\s+)?life\b", r"\b(?:want|wanna|wanted)\s+(?:to\s+)?die\b",
    r"\bself[-\s]?harm\w*", r"\b(?:hurt|hurting|cut|cutting)\s+my\s*self\b",
    r"\bno\s+reason\s+to\s+live\b", r"\bbetter\s+off\s+dead\b",
    r"\bdon'?t\s+want\s+to\s+(?:live|be\s+alive|exist|wake\s+up)\b", r"\boverdos\w*",
)
_MEDICAL = _any(
    r"วินิจฉัย", r"เป็นโรคอะไร", r"เป็น(?:มะเร็ง|เนื้องอก|เบาหวาน|เอดส์|เอชไอวี)(?:ไหม|มั้ย|หรือเปล่า|รึเปล่า|หรือไม่)",
    r"ควร(?:หยุด|เลิก|งด)(?:กิน)?ยา", r"(?:ควร)?กินยาอะไร", r"ต้องผ่าตัด(?:ไหม|มั้ย|หรือเปล่า|หรือไม่)",
    r"\bdiagnos\w*",
    r"\bdo\s+i\s+have\s+(?:cancer|diabetes|hiv|aids|covid|a\s+tumou?r|an?\s+(?:disease|illness|infection|std))\b",
    r"\bwhat\s+(?:disease|illness|condition)\s+do\s+i\s+have\b",
    r"\bshould\s+i\s+(?:stop|quit|skip|change)\s+(?:taking\s+)?(?:my\s+)?(?:medication|medicine|meds|pills|treatment|chemo\w*|insulin)\b",
    r"\b(?:which|what)\s+(?:medicine|medication|drug|dose|dosage)\s+should\s+i\b",
    r"\bam\s+i\s+pregnant\b",
)
# Illegal acts and harm to others are refused when the asker means to do them ("how do I
# steal ..."); a victim asking about a theft ("who stole my bag?") still gets a reading.
_ACTS_TH = r"(?:ขโมย|ปล้น|ฟอกเงิน|วางยา|ฆ่า(?!ตัวตาย|เวลา)|ทำร้าย|แฮก|หลบภาษี|เลี่ยงภาษี|ปลอม|ค้ายา|ขายยา)"
_ACTS_EN = (
    r"(?:steal|rob|shoplift|launder|poison|kill|murder|hurt|stab|hack|smuggle|scam|forge|"
    r"evade\s+tax\w*|sell\s+drugs|deal\s+drugs|make\s+(?:a\s+)?bomb|buy\s+(?:a\s+)?(?:gun|drugs))"
)
_ILLEGAL = _any(
    r"(?:อยาก|ควร|วิธี|แผน|ช่วย|สอน|(?:ฉัน|ผม|เรา|หนู|กู)จะ)(?:ไป|แอบ|ลอง)?" + _ACTS_TH,
    r"(?:ขาย|ค้า|ส่ง)(?:ยาเสพติด|ยาบ้า|ยาไอซ์|เฮโรอีน)",
    r"\b(?:how\s+(?:to|can\s+i|do\s+i|should\s+i|would\s+i)|should\s+i|can\s+i|help\s+me|"
    r"i\s+(?:want|plan|need|intend|would\s+like)\s+to|i(?:'m|\s+am)\s+going\s+to)\s+"
    r"(?:\w+\s+)?" + _ACTS_EN + r"\b",
    r"\bget\s+away\s+with\s+(?:murder|stealing|fraud|it)\b", r"\blaunder(?:ing)?\s+money\b",
    r"\bmake\s+(?:a\s+)?(?:bomb|explosives?)\b", r"\bfake\s+(?:documents|id|passport)\b",
)

REFUSALS: dict[GuardCategory, dict[Locale, str]] = {
    "self_harm": {
        "th": (
            "ขอบคุณที่กล้าเล่าเรื่องนี้ออกมานะ สิ่งที่คุณกำลังรู้สึกสำคัญเกินกว่าที่ไพ่จะตอบแทนได้ "
            "และคุณไม่จำเป็นต้องแบกมันไว้คนเดียว โทรคุยกับสายด่วนสุขภาพจิต 1323 ได้ฟรีตลอด 24 ชั่วโมง "
            "หรือบอกคนที่คุณไว้ใจให้อยู่ข้าง ๆ ตอนนี้ ถ้าคุณอยู่ในอันตรายทันที โทร 1669 "
            "เราไม่ได้เปิดไพ่ให้กับคำถามนี้ แต่เราอยากให้คุณปลอดภัย"
        ),
        "en": (
            "Thank you for telling us this. What you are feeling matters more than any card can "
            "answer, and you do not have to carry it alone. In Thailand you can call the 1323 "
            "mental health hotline, free and open 24 hours, or reach out to someone you trust "
            "right now. If you are in immediate danger, call 1669 (or your local emergency "
            "number outside Thailand). We have not drawn a reading for this question, because "
            "your safety comes first."
        ),
    },
    "medical": {
        "th": (
            "ไพ่ทาโรต์ไม่สามารถวินิจฉัยโรคหรือแนะนำการใช้ยาและการรักษาได้ เรื่องนี้ควรปรึกษาแพทย์หรือเภสัชกรโดยตรง "
            "หากอยากถามเรื่องกำลังใจหรือการดูแลตัวเองในช่วงนี้ ลองตั้งคำถามใหม่ได้เลย"
        ),
        "en": (
            "Tarot cannot diagnose illness or advise on medicines and treatment; please ask a "
            "doctor or pharmacist about this. If you would like a reading about your energy or "
            "how to care for yourself in this period, try asking in that way."
        ),
    },
    "illegal": {
        "th": "ขออภัย เราไม่สามารถเปิดไพ่ให้กับคำถามที่เกี่ยวกับการทำร้ายผู้อื่นหรือการกระทำผิดกฎหมายได้",
        "en": "Sorry, we cannot give a reading about harming others or breaking the law.",
    },
    "too_short": {
        "th": "ช่วยเล่าคำถามให้ละเอียดขึ้นอีกนิด เพื่อให้การเปิดไพ่ตรงกับเรื่องของคุณ",
        "en": "Please tell us a little more in your question so the reading can fit your situation.",
    },
    "too_long": {
        "th": f"คำถามยาวเกิน {MAX_QUESTION_CHARS} ตัวอักษร ลองสรุปให้สั้นลงแล้วถามใหม่อีกครั้ง",
        "en": f"Your question is longer than {MAX_QUESTION_CHARS} characters; please shorten it.",
    },
    "unsupported_language": {
        "th": "ตอนนี้เรารองรับเฉพาะคำถามภาษาไทยและภาษาอังกฤษ",
        "en": "For now we can read questions written in Thai or English only.",
    },
}


def refusal(category: GuardCategory, question: str, locale: Locale) -> GuardResult:
    if category == "ok":
        return GuardResult(allowed=True, category="ok")
    language = question_language(question, locale)
    return GuardResult(allowed=False, category=category, message=REFUSALS[category][language])


def _letters(text: str) -> tuple[int, int]:
    """(Thai or Latin letters, letters of any other script)."""
    ours = other = 0
    for ch in text:
        if _THAI_LETTER.match(ch) or _LATIN_LETTER.match(ch):
            ours += 1
        elif ch.isalpha() and not ("\u0e00" <= ch <= "\u0e7f"):
            other += 1
    return ours, other


def screen_question(question: str, locale: Locale) -> GuardResult:
    """Decide from rules alone whether the question may be read; safety checks come first."""
    text = normalize_question(question)
    if _SELF_HARM.search(text):
        return refusal("self_harm", text, locale)
    if len(text) > MAX_QUESTION_CHARS:
        return refusal("too_long", text, locale)
    ours, other = _letters(text)
    if other > ours:
        return refusal("unsupported_language", text, locale)
    if ours < MIN_LETTERS:
        return refusal("too_short", text, locale)
    if _MEDICAL.search(text):
        return refusal("medical", text, locale)
    if _ILLEGAL.search(text):
        return refusal("illegal", text, locale)
    return GuardResult(allowed=True, category="ok")
