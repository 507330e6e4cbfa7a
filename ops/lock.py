"""requirements.lock: every package of the Lambda artifact pinned, with its hashes.

    python -m ops.lock write             resolve requirements.txt again (make lock)
    python -m ops.lock check             resolve again and compare with the committed lock
    python -m ops.lock check --offline   only what needs no package index (make artifact)

`requirements.txt` pins the packages the functions import; their own dependencies are resolved
by uv for the runtime of serverless.yml (CPython 3.12, manylinux x86_64, wheels only) and written
with the sha256 of every wheel, so `pip install --require-hashes` builds the same artifact
anywhere. uv keeps the versions already in the lock while they still satisfy requirements.txt,
so a new upload to the index does not make the lock stale; changing a pin does. The lock's first
line records a digest of requirement lines of requirements.txt, which the offline check compares.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"
LOCK = ROOT / "requirements.lock"
PYTHON_VERSION = "3.12"  # serverless.yml: runtime python3.12
PYTHON_PLATFORM = "x86_64-manylinux_2_17"  # manylinux2014, architecture x86_64
DIGEST_PREFIX = "# requirements.txt digest: "
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


class LockError(Exception):
    """The lock does not match requirements.txt."""


def requirement_lines(text: str) -> list[str]:
    """The requirement lines, without comments and blank lines (what the digest covers)."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def digest(requirements: str) -> str:
    return hashlib.sha256("\n".join(requirement_lines(requirements)).encode()).hexdigest()


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    """`name == version` of every pinned line (names normalised as PyPA does)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _PIN.match(line.strip())
        if match:
            found[_name(match.group(1))] = match.group(3)
    return found


def hashes(lock_text: str) -> dict[str, list[str]]:
    """Each locked package's `sha256:` hashes."""
    found: dict[str, list[str]] = {}
    current = None
    for line in lock_text.splitlines():
        match = _PIN.match(line)
        if match:
            current = _name(match.group(1))
            found[current] = []
        if current is not None:
            found[current] += re.findall(r"--hash=(sha256:[0-9a-f]{64})", line)
    return found


def check_offline(requirements: str, lock_text: str) -> None:
    """The lock was made from these requirement lines, holds their pins, and hashes every entry."""
    first = lock_text.splitlines()[0] if lock_text else ""
    if first != DIGEST_PREFIX + digest(requirements):
        raise LockError("requirements.lock was not made from this requirements.txt: "
                        "run `make lock`")
    locked = pins(lock_text)
    for name, version in pins(requirements).items():
        if locked.get(name) != version:
            raise LockError(f"requirements.lock has {name}=={locked.get(name)}, "
                            f"requirements.txt pins {version}: run `make lock`")
    unhashed = [name for name, found in hashes(lock_text).items() if not found]
    if unhashed:
        raise LockError(f"requirements.lock has entries without hashes: {unhashed}")


def _uv() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


def resolve(requirements_path: Path = REQUIREMENTS, previous: str | None = None) -> str:
    """The lock for `requirements_path`, preferring the versions of `previous` (a lock's text)."""
    requirements = requirements_path.read_text("utf-8")
    with tempfile.TemporaryDirectory(prefix="mimivibe-lock-") as work:
        output = Path(work) / "requirements.lock"
        if previous:
            output.write_text(previous, "utf-8")  # uv prefers the versions already in its output
        shutil.copy2(requirements_path, Path(work) / "requirements.txt")
        done = subprocess.run(  # noqa: S603 (our arguments, uv from the venv)
            [_uv(), "pip", "compile", "requirements.txt", "--output-file", output.name,
             "--generate-hashes", "--python-version", PYTHON_VERSION,
             "--python-platform", PYTHON_PLATFORM, "--only-binary", ":all:",
             "--custom-compile-command", "make lock", "--quiet"],
            cwd=work, capture_output=True, text=True, timeout=300, check=False,
        )
        if done.returncode != 0:
            raise LockError(f"uv could not resolve requirements.txt:\n{done.stderr}")
        body = output.read_text("utf-8")
    return f"{DIGEST_PREFIX}{digest(requirements)}\n{body}"


def check(requirements_path: Path = REQUIREMENTS, lock_path: Path = LOCK) -> None:
    """Offline checks, then a fresh resolution must give the committed lock's versions."""
    lock_text = lock_path.read_text("utf-8") if lock_path.exists() else ""
    check_offline(requirements_path.read_text("utf-8"), lock_text)
    fresh = resolve(requirements_path, lock_text)
    if pins(fresh) != pins(lock_text):
        changed = sorted(set(pins(fresh).items()) ^ set(pins(lock_text).items()))
        raise LockError(f"requirements.lock is not current ({changed}): run `make lock`")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.lock", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("write", "check"))
    parser.add_argument("--offline", action="store_true",
                        help="check: only the checks that need no package index")
    args = parser.parse_args(argv)
    try:
        if args.command == "write":
            previous = LOCK.read_text("utf-8") if LOCK.exists() else None
            LOCK.write_text(resolve(REQUIREMENTS, previous), "utf-8")
            print(f"wrote {LOCK.name}")
        elif args.offline:
            check_offline(REQUIREMENTS.read_text("utf-8"),
                          LOCK.read_text("utf-8") if LOCK.exists() else "")
            print(f"{LOCK.name} matches requirements.txt")
        else:
            check()
            print(f"{LOCK.name} is current")
    except LockError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
