"""The composition root: every client and service built once per settings object, built again
when the settings change, injected and forgotten through `shared.bootstrap` only."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest

from shared import bootstrap
from shared.bootstrap import Services
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "supabase_url": "http://127.0.0.1:9", "supabase_anon_key": "a",
        "supabase_service_role_key": "s", "supabase_jwt_secret": "j" * 32,
        "upstash_redis_rest_url": "http://127.0.0.1:9", "upstash_redis_rest_token": "t",
        "stripe_secret_key": "sk_test_x", "stripe_webhook_secret": "whsec_x",
        **overrides}
    return Settings(**values)


@pytest.fixture
def current(monkeypatch: pytest.MonkeyPatch):
    """`get_settings()` answers with the object in `current[0]`; everything built is forgotten
    after the test."""
    box = [settings()]
    monkeypatch.setattr("shared.settings.get_settings", lambda: box[0])
    bootstrap.reset()
    yield box
    bootstrap.reset()


def test_each_service_is_built_once_per_settings_and_again_after_they_change(current):
    first = bootstrap.services()
    assert bootstrap.services() is first
    assert first.purchases is first.purchases
    assert first.purchases._stripe is first.stripe
    current[0] = settings(stripe_secret_key="sk_test_rotated")
    second = bootstrap.services()
    assert second is not first and second.stripe is not first.stripe
    assert second.stripe._requestor.api_key == "sk_test_rotated"
    assert second.purchases._stripe is second.stripe


def test_an_override_reaches_what_is_built_from_it_and_survives_a_settings_change(current):
    before = bootstrap.services().purchases
    fake = object()
    bootstrap.override(stripe=fake)
    after = bootstrap.services().purchases
    assert after is not before and after._stripe is fake
    current[0] = settings()
    assert bootstrap.services().stripe is fake
    bootstrap.reset()
    assert bootstrap.services().stripe is not fake


def test_an_override_may_be_none_where_the_service_is_optional(current):
    bootstrap.override(rate_limiter=None, waker=None)
    built = bootstrap.services()
    assert built.rate_limiter is None and built.sessions._rate_limiter is None


def test_overriding_an_unknown_name_is_refused(current):
    with pytest.raises(TypeError, match="no strip"):
        bootstrap.override(strip=object())


def test_concurrent_first_uses_build_one_instance(current):
    built = Services(current[0])
    seen: list[object] = []
    barrier = threading.Barrier(8)

    def use() -> None:
        barrier.wait()
        seen.append(built.readings)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(seen) == 8 and all(s is seen[0] for s in seen)


def test_without_upstash_there_is_no_rate_limiter_and_readings_wait_for_the_sweep(current):
    current[0] = settings(upstash_redis_rest_url=None, upstash_redis_rest_token=None)
    built = bootstrap.services()
    assert built.rate_limiter is None
    assert built.readings._queue is None


def test_every_service_of_the_root_is_built_from_complete_settings(current):
    built = bootstrap.services()
    for name in sorted(bootstrap.NAMES):
        if name in {"qstash_verifier", "waker"}:
            continue  # QStash is not configured here: checked below
        assert getattr(built, name) is not None or name == "rate_limiter", name
    assert built.waker is None


def test_no_use_case_module_keeps_a_service_locator():
    # The root is the one place that builds and caches clients and services.
    offenders = []
    for path in sorted((ROOT / "shared").rglob("*.py")):
        if path.name == "bootstrap.py":
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith(("get_", "set_")) \
                    and node.name not in {"get_settings", "get_deck", "get_logger",
                                          "set_erased_check"}:
                offenders.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert offenders == []
