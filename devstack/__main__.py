"""`python -m devstack up` runs the local stack until Ctrl-C or SIGTERM; `status` describes it."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from devstack.logs import to_terminal
from devstack.stack import DEFAULT_ROOT, LocalStack, read_stack_file


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
        "",
    ]
    return "\n".join(lines)


def up() -> int:
    to_terminal()
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with LocalStack() as stack:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("command", choices=("up", "status"))
    args = parser.parse_args(argv)
    return up() if args.command == "up" else status()


if __name__ == "__main__":
    sys.exit(main())
