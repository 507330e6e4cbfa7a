"""One instance per Lambda container: built on first use (once, even with concurrent first
calls), kept for the container's life, replaceable by tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerContainer(Generic[T]):
    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value

    def set(self, value: T | None) -> None:
        """Inject an instance (tests), or drop the cached one with None."""
        with self._lock:
            self._value = value
