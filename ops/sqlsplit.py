"""Split a SQL script into statements the way the Supabase CLI does.

The CLI records each applied migration as the list of its statements, kept verbatim with the
trailing `;` and surrounding white space removed. It splits on `;` except inside quotes,
comments, dollar-quoted bodies, parentheses and `BEGIN ATOMIC ... END` function bodies, and a
backslash outside quotes escapes the next character (psql's `\\;`). Splitting identically lets
us compare a file with the history `supabase db push` wrote, and run SQL-standard function
bodies, whose inner statements end with `;`, as one statement.
"""

from __future__ import annotations

import re

# PostgreSQL's lexer counts every byte at or above 0x80 as an identifier character.
_IDENT_CHAR = r"A-Za-z0-9_\u0080-\U0010FFFF"
_DOLLAR_TAG = re.compile(rf"\$([A-Za-z_\u0080-\U0010FFFF][{_IDENT_CHAR}]*)?\$")
_WORD = re.compile(rf"[{_IDENT_CHAR}$]+")
_COMMENTS_AND_SPACE = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)


def split_statements(script: str) -> list[str]:
    statements: list[str] = []
    start = 0
    i = 0
    n = len(script)
    depth = 0  # open parentheses
    atomic_start: int | None = None  # inside BEGIN ATOMIC: where the current inner statement starts
    previous_word = ("", 0)  # the last word outside quotes and comments, and where it ended
    while i < n:
        ch = script[i]
        if script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end + 1
        elif script.startswith("/*", i):
            i = _skip_block_comment(script, i)
        elif ch in {"'", '"'}:
            i = _skip_quoted(script, i, ch)
        elif ch == "\\":
            i += 2
        elif (
            ch == "$" and (match := _DOLLAR_TAG.match(script, i)) and not _in_identifier(script, i)
        ):
            tag = match.group(0)
            end = script.find(tag, match.end())
            i = n if end < 0 else end + len(tag)
        elif ch == "(":
            depth += 1
            i += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
            i += 1
        elif ch == ";":
            if depth:
                i += 1
            elif atomic_start is not None:
                atomic_start = i + 1
                i += 1
            else:
                _append(statements, script[start : i + 1])
                start = i + 1
                i += 1
        elif ch != "$" and (word := _WORD.match(script, i)) and not _in_identifier(script, i):
            keyword = word.group(0).upper()
            last, last_end = previous_word
            if (
                keyword == "ATOMIC"
                and last == "BEGIN"
                and atomic_start is None
                and script[last_end:i].isspace()
            ):
                atomic_start = word.end()
            elif (
                keyword == "END"
                and atomic_start is not None
                and not depth
                and _only_comments_and_space(script[atomic_start:i])
            ):
                # The body's END is the first token of an inner statement; an END after other
                # text (a CASE arm) is part of that statement.
                atomic_start = None
            previous_word = (keyword, word.end())
            i = word.end()
        else:
            i += 1
    _append(statements, script[start:])
    return statements


def _append(statements: list[str], token: str) -> None:
    trimmed = token.rstrip(";").strip()
    if trimmed:
        statements.append(trimmed)


def _in_identifier(script: str, i: int) -> bool:
    # `$1` parameters and names such as `a$b` are not dollar quotes.
    if i == 0:
        return False
    before = script[i - 1]
    return before.isalnum() or before in "_$" or ord(before) >= 0x80


def _only_comments_and_space(text: str) -> bool:
    return _COMMENTS_AND_SPACE.fullmatch(text) is not None


def _skip_block_comment(script: str, i: int) -> int:
    depth = 0
    n = len(script)
    while i < n:
        if script.startswith("/*", i):
            depth += 1
            i += 2
        elif script.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


def _skip_quoted(script: str, i: int, quote: str) -> int:
    n = len(script)
    i += 1
    while i < n:
        if script[i] == quote:
            if i + 1 < n and script[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return n
