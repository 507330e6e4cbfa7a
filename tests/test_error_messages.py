"""Every error code speaks English and Thai; the request's Accept-Language picks the message and
never the code."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared import errors
from shared.errors import MESSAGES_TH, AppError, error_catalog, error_classes
from shared.http import FunctionUrlRequest, adapter, preferred_language

ROOT = Path(__file__).resolve().parent.parent
THAI = re.compile(r"[\u0e00-\u0e7f]")


def test_every_error_class_has_an_english_and_a_thai_message() -> None:
    for cls in error_classes():
        assert cls.default_message and not THAI.search(cls.default_message), cls.__name__
        assert THAI.search(cls.default_message_th), f"{cls.__name__} has no Thai message"
        assert cls.default_message_th != cls.default_message


def test_the_catalog_lists_every_code_with_both_messages() -> None:
    catalog = error_catalog()
    assert set(catalog) == {cls.code for cls in error_classes()}
    for code, entry in catalog.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", code)
        assert entry["en"] and THAI.search(entry["th"]), code
        assert entry["status"] and all(400 <= s < 600 for s in entry["status"])


def _raised_sentences() -> dict[str, str]:
    """Every string literal passed as the message of an error class in shared/ and functions/."""
    names = {cls.__name__ for cls in error_classes()}
    found: dict[str, str] = {}
    for path in [*ROOT.glob("shared/**/*.py"), *ROOT.glob("functions/**/*.py")]:
        if path.name == "errors.py" and path.parent.name == "shared":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            called = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) else None)
            if called not in names:
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found[first.value] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return found


def test_every_sentence_the_code_raises_has_a_thai_translation() -> None:
    raised = _raised_sentences()
    assert raised, "the scan found no raised sentence at all"
    missing = {text: where for text, where in raised.items() if text not in MESSAGES_TH}
    assert not missing, f"add these to shared.errors.MESSAGES_TH: {missing}"
    for thai in MESSAGES_TH.values():
        assert THAI.search(thai)


def test_a_translation_nobody_raises_is_not_kept() -> None:
    stale = set(MESSAGES_TH) - set(_raised_sentences())
    assert not stale, f"no longer raised anywhere: {stale}"


def test_a_message_built_at_run_time_falls_back_to_the_class_thai_message() -> None:
    error = errors.PaymentFailed("Your card has insufficient funds.")
    assert error.message_for("en") == "Your card has insufficient funds."
    assert error.message_for("th") == errors.PaymentFailed.default_message_th
    assert errors.NotFound("You have no saved card with this id.").message_for("th") == \
        MESSAGES_TH["You have no saved card with this id."]


@pytest.mark.parametrize(("header", "language"), [
    ("th", "th"),
    ("en", "en"),
    ("TH", "th"),
    ("th-TH", "th"),
    ("th-TH,th;q=0.9,en;q=0.8", "th"),
    ("en-US,en;q=0.9,th;q=0.8", "en"),
    ("en;q=0.5, th-TH;q=0.9", "th"),
    ("en;q=0.8, th;q=0.9", "th"),
    ("fr, th;q=0.2", "th"),
    ("fr-FR, de", "en"),
    ("th;q=0, *", "en"),
    ("en;q=0, *", "th"),
    ("*", "en"),
    ("th;q=0.5, en;q=0.5", "th"),
    ("th;q=abc, en;q=0.1", "en"),
    ("th;q=2", "en"),
    ("", "en"),
    (None, "en"),
])
def test_accept_language_picks_the_heaviest_supported_language(header: str | None,
                                                               language: str) -> None:
    assert preferred_language(header) == language


def _route(request: FunctionUrlRequest) -> Any:
    if request.raw_path == "/stars":
        raise errors.InsufficientStars(details={"needed": 2})
    if request.raw_path == "/crash":
        raise RuntimeError("boom")
    raise errors.NotFound("You have no saved card with this id.")


def _call(path: str, accept_language: str | None) -> dict[str, Any]:
    headers = {"Accept-Language": accept_language} if accept_language is not None else {}
    event = {"version": "2.0", "rawPath": path, "headers": headers,
             "requestContext": {"http": {"method": "POST"}, "requestId": "req-1"}}
    return adapter(_route, function="probe")(event, None)


@pytest.mark.parametrize("path", ["/stars", "/card", "/crash"])
def test_the_error_message_follows_accept_language_and_the_code_never_changes(path: str) -> None:
    english = _call(path, None)
    thai = _call(path, "th-TH,th;q=0.9,en;q=0.5")
    also_english = _call(path, "en-GB, th;q=0.3")
    en_body, th_body = json.loads(english["body"]), json.loads(thai["body"])
    assert en_body["error"]["code"] == th_body["error"]["code"]
    assert json.loads(also_english["body"]) == {**en_body, "request_id": "req-1"}
    assert english["statusCode"] == thai["statusCode"]
    assert en_body["error"]["details"] == th_body["error"]["details"]
    assert not THAI.search(en_body["error"]["message"])
    assert THAI.search(th_body["error"]["message"])
    assert thai["headers"]["content-language"] == "th"
    assert english["headers"]["content-language"] == "en"
    assert "accept-language" in thai["headers"]["vary"].lower()


def test_an_event_that_cannot_be_parsed_still_answers_in_thai() -> None:
    event = {"version": "2.0", "rawPath": "/", "isBase64Encoded": True, "body": "%%%",
             "headers": {"accept-language": "th"},
             "requestContext": {"http": {"method": "POST"}, "requestId": "req-2"}}
    response = adapter(_route, function="probe")(event, None)
    body = json.loads(response["body"])
    assert response["statusCode"] == 422
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["message"] == MESSAGES_TH["The request body is not valid base64."]


def test_the_english_message_is_the_one_raised() -> None:
    assert AppError("Exactly this.").message_for("en") == "Exactly this."


def test_docs_api_lists_every_code_with_both_messages() -> None:
    text = (ROOT / "docs" / "API.md").read_text("utf-8")
    for code, entry in error_catalog().items():
        row = f"| `{code}` | {', '.join(map(str, entry['status']))} | {entry['en']} | {entry['th']} |"
        assert row in text, f"docs/API.md, error codes: add or update\n{row}"
    for sqlstate, cls in errors.SQLSTATE_ERRORS.items():
        assert f"`{cls.code}`" in text and (sqlstate in text or sqlstate[:4] in text), sqlstate
