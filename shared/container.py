"""What a Lambda container builds once and keeps: clients and use-case services.

Every such instance is built from one settings object and built again when `get_settings()`
returns another one (a rotated secret, or tests that reset the settings), so a new Stripe key,
webhook secret, Supabase key or QStash key reaches every client within the secret's refresh
interval, not only the settings object. This is the one place that decides what lives how long:
every client and service of `shared/` is a `PerSettings` (no other cache of clients exists), so
`reset()` forgets them all at once. An instance injected with `set(...)` (tests) stays until it
is dropped with `set(None)` or `reset()`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from shared.settings import Settings

T = TypeVar("T")

# Every PerSettings of the process, for reset(); they live as long as their modules.
_registry: list[PerSettings[object]] = []


class PerSettings(Generic[T]):
    """One instance per settings object, built on first use (once, even with concurrent first
    calls) and again after the settings changed."""

    def __init__(self, build: Callable[[Settings], T]) -> None:
        self._build = build
        # (settings it was built from, instance); None as settings marks an injected one.
        self._cached: tuple[Settings | None, T] | None = None
        self._lock = threading.Lock()
        _registry.append(self)  # type: ignore[arg-type]

    def get(self) -> T:
        cached = self._cached
        if cached is not None and cached[0] is None:
            return cached[1]
        from shared.settings import get_settings

        settings = get_settings()
        if cached is None or cached[0] is not settings:
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


def reset() -> None:
    """Forget every client and service, injected or built (tests switching stacks or settings):
    the next use builds each again from the settings of that moment."""
    for instance in list(_registry):
        instance.set(None)
