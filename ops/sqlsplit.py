"""Split a SQL script into statements the way the Supabase CLI does.

The CLI records each applied migration as the list of its statements (split on `;` outside
quotes, comments and dollar-quoted bodies, kept verbatim, trailing `;` and surrounding white
space removed). Splitting identically lets us compare a file with its recorded history.
"""

from __future__ import annotations

import re

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def split_statements(script: str) -> list[str]:
    statements: list[str] = []
    start = 0
    i = 0
    n = len(script)
    while i < n:
        ch = script[i]
        if script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end + 1
        elif script.startswith("/*", i):
            i = _skip_block_comment(script, i)
        elif ch in {"'", '"'}:
            i = _skip_quoted(script, i, ch)
        elif (
            ch == "$" and (match := _DOLLAR_TAG.match(script, i)) and not _in_identifier(script, i)
        ):
            tag = match.group(0)
            end = script.find(tag, match.end())
            i = n if end < 0 else end + len(tag)
        elif ch == ";":
            _append(statements, script[start : i + 1])
            start = i + 1
            i += 1
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
    return i > 0 and (script[i - 1].isalnum() or script[i - 1] == "_")


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
