"""One instance per Lambda container: built on first use (once, even with concurrent first
calls), kept for the container's life, replaceable by tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from shared.settings import Settings

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


class PerSettings(Generic[T]):
    """One instance per settings object: built again when `get_settings()` returns a new one
    (tests and local tools reset the settings); an injected instance stays until dropped."""

    def __init__(self, build: Callable[[Settings], T]) -> None:
        self._build = build
        # (settings it was built from, instance); None as settings marks an injected one.
        self._cached: tuple[Settings | None, T] | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        from shared.settings import get_settings

        settings = get_settings()
        cached = self._cached
        if cached is None or (cached[0] is not None and cached[0] is not settings):
            with self._lock:
                cached = self._cached
                if cached is None or (cached[0] is not None and cached[0] is not settings):
                    cached = (settings, self._build(settings))
                    self._cached = cached
        return cached[1]

    def set(self, value: T | None) -> None:
        """Inject an instance (tests), or drop the cached one with None."""
        with self._lock:
            self._cached = None if value is None else (None, value)
