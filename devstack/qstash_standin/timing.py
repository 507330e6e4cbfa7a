"""Durations, QStash's retry backoff and its `Upstash-Retry-Delay` expressions."""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable

MAX_DELAY_SECONDS = 86400.0  # QStash caps every retry delay at one day.

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "pow": math.pow, "sqrt": math.sqrt, "abs": abs, "exp": math.exp, "floor": math.floor,
    "ceil": math.ceil, "round": round, "min": min, "max": max,
}
_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.Mod: lambda a, b: a % b, ast.Pow: math.pow,
}


def parse_duration(text: str) -> float:
    """`"10s"`, `"1m"`, `"1h30m"`, `"2d"` (a bare number is seconds) → seconds."""
    value = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    if not value or _DURATION.sub("", value):
        raise ValueError(f"invalid duration {text!r}")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(value))


def default_backoff(retry_number: int) -> float:
    """Seconds QStash waits before retry `retry_number` (1 for the first retry)."""
    try:
        return min(MAX_DELAY_SECONDS, math.exp(2.5 * retry_number))
    except OverflowError:
        return MAX_DELAY_SECONDS


class RetryDelay:
    """A parsed `Upstash-Retry-Delay` expression: milliseconds, variable `retried` (from 0)."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        try:
            self._tree = ast.parse(expression, mode="eval")
        except SyntaxError:
            raise ValueError(f"invalid retry delay expression {expression!r}") from None
        self.seconds(0)  # rejects unknown names and functions up front

    def _eval(self, node: ast.AST, retried: int) -> float:
        if isinstance(node, ast.Expression):
            return self._eval(node.body, retried)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id == "retried":
            return float(retried)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = self._eval(node.operand, retried)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](
                self._eval(node.left, retried), self._eval(node.right, retried))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in _FUNCTIONS and not node.keywords):
            args = [self._eval(arg, retried) for arg in node.args]
            return float(_FUNCTIONS[node.func.id](*args))
        raise ValueError(f"unsupported retry delay expression {self.expression!r}")

    def seconds(self, retried: int) -> float:
        try:
            milliseconds = self._eval(self._tree, retried)
        except (OverflowError, ZeroDivisionError):
            return MAX_DELAY_SECONDS
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid retry delay expression: {exc}") from None
        return min(MAX_DELAY_SECONDS, max(0.0, milliseconds / 1000))
