"""requirements.lock: made from requirements.txt, every entry hashed, and current (a fresh
resolution for the Lambda runtime gives the same versions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.lock import (
    DIGEST_PREFIX,
    LOCK,
    REQUIREMENTS,
    LockError,
    check,
    check_offline,
    digest,
    hashes,
    pins,
    resolve,
)


def test_the_lock_was_made_from_requirements_txt_and_holds_its_pins() -> None:
    check_offline(REQUIREMENTS.read_text("utf-8"), LOCK.read_text("utf-8"))


def test_every_locked_package_is_pinned_with_a_hash() -> None:
    lock = LOCK.read_text("utf-8")
    found = hashes(lock)
    assert set(found) == set(pins(lock))
    assert len(found) > len(pins(REQUIREMENTS.read_text("utf-8")))  # the dependencies too
    assert all(found.values())


def test_a_changed_pin_or_requirement_makes_the_lock_stale() -> None:
    requirements = REQUIREMENTS.read_text("utf-8")
    lock = LOCK.read_text("utf-8")
    with pytest.raises(LockError, match="make lock"):
        check_offline(requirements.replace("httpx==0.28.1", "httpx==0.28.0"), lock)
    with pytest.raises(LockError, match="make lock"):
        check_offline(requirements + "\nrequests==2.32.5\n", lock)
    # Comments do not count.
    check_offline(requirements + "\n# a note\n", lock)


def test_a_lock_whose_pin_differs_is_refused_even_with_the_right_digest() -> None:
    requirements = REQUIREMENTS.read_text("utf-8")
    lock = LOCK.read_text("utf-8").replace("\nhttpx==0.28.1 ", "\nhttpx==0.27.0 ")
    assert DIGEST_PREFIX + digest(requirements) in lock
    with pytest.raises(LockError, match="httpx"):
        check_offline(requirements, lock)


@pytest.mark.timeout(300)
def test_resolving_requirements_txt_again_gives_the_committed_lock() -> None:
    # Resolves against the package index (reachable wherever the tests run).
    check()


@pytest.mark.timeout(300)
def test_a_new_pin_changes_the_resolution(tmp_path: Path) -> None:
    changed = tmp_path / "requirements.txt"
    changed.write_text(REQUIREMENTS.read_text("utf-8").replace("httpx==0.28.1", "httpx==0.27.2"),
                       "utf-8")
    fresh = resolve(changed, LOCK.read_text("utf-8"))
    assert pins(fresh)["httpx"] == "0.27.2"
    assert fresh.splitlines()[0] == DIGEST_PREFIX + digest(changed.read_text("utf-8"))
