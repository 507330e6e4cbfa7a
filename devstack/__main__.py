"""`python -m devstack up` runs the local stack until Ctrl-C or SIGTERM (`--verbose`: every log
line on the terminal, not only requests, errors and consumer runs that did work; all of them are
in `.local/dev.log` either way); `status` prints the running stack's description as JSON; `urls`
prints its URLs as shell variables (`eval "$(python -m devstack urls)"`)."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from devstack.logs import to_terminal
from devstack.stack import DEFAULT_ROOT, LocalStack, read_stack_file

LOG_FILE = DEFAULT_ROOT / "dev.log"


def banner(stack: LocalStack) -> str:
    info = stack.info
    lines = ["", "MimiVibe local stack is running (Ctrl-C stops it)", ""]
    for name, url in info["urls"].items():
        lines.append(f"  {name:<12} {url}")
    for name, url in info.get("functions", {}).items():
        lines.append(f"    {name:<16} {url}")
    lines += [
        "",
        f"  database     {info['database_url']}",
        f"  redis        {info['redis_url']}",
        f"  anon key     {info['anon_key']}",
        f"  service key  {info['service_role_key']}",
        f"  JWT secret   {info['jwt_secret']}",
        "",
        f"  everything above, machine-readable: {stack.stack_file}",
        f"  every log line (the terminal shows requests, errors and consumer runs that did "
        f"work): {LOG_FILE}",
        "",
    ]
    return "\n".join(lines)


def up(verbose: bool = False) -> int:
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with to_terminal(LOG_FILE, verbose=verbose), LocalStack() as stack:
        print(banner(stack), flush=True)
        while not stop.wait(1.0):
            pass
        logging.getLogger("devstack.stack").info("stopping")
    return 0


def status() -> int:
    info = read_stack_file(DEFAULT_ROOT)
    if info is None:
        print("no local stack is running (start it with `make dev`)", file=sys.stderr)
        return 1
    print(json.dumps(info, indent=2))
    return 0


def shell_urls(info: dict[str, Any]) -> str:
    """The running stack's URLs and the anon key as shell assignments (values quoted)."""
    names = {f"{name.upper()}_URL": url for name, url in info["urls"].items()}
    names["DOCS_URL"] = info["urls"]["functions"] + "/docs"
    names["IDENTITY_TOKEN_URL"] = info.get("identity", {}).get("token_url", "")
    names["ANON_KEY"] = info["anon_key"]
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in names.items()
                   if value)


def urls() -> int:
    info = read_stack_file(DEFAULT_ROOT)
    if info is None:
        print("no local stack is running (start it with `make dev`)", file=sys.stderr)
        return 1
    print(shell_urls(info), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("command", choices=("up", "status", "urls"))
    parser.add_argument("--verbose", action="store_true",
                        help="up: every log line on the terminal")
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(verbose=args.verbose)
    return status() if args.command == "status" else urls()


if __name__ == "__main__":
    sys.exit(main())
