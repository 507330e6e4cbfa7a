"""Cold import cost of every handler in serverless.yml, and what logging and metrics add to it.

    .venv/bin/python -m benchmarks.handler_imports [--runs 5]

Each measurement is a fresh interpreter (a Lambda cold start imports the handler module once),
timed both by the wall clock and by the CPU time the interpreter spent; the ratios use CPU
time, which other work on a shared machine disturbs far less than the wall clock:
the median wall time of `import functions.<name>.handler` next to a naive
`import supabase, stripe, pydantic` and next to a bare `import pydantic` (the floor any handler
that parses its input with pydantic stands on), all measured in the same run, interleaved; then what comes on top in AWS: the Powertools Logger and
EMF provider (imported on the first invocation by shared.observability) and the Secrets Manager
client (boto3 and Powertools parameters, imported during init by functions/__init__.py when
MIMIVIBE_SECRET_ID is set; the secret's fetch itself is a network call, not measured here).
And what the first request pays that the import no longer does: in a fresh interpreter of its
own, after the handler's import, the CPU time of importing the body models its endpoints name
(with the use-case modules that define them, and pydantic's model machinery) and building their
validators, as the first request that parses a body does (`NoBody` for an endpoint without one).

Every side is imported from bytecode: pip compiles the libraries when it installs them, so the
project's own packages are compiled first too (`compileall`, into their `__pycache__`), else an
environment that writes no bytecode (PYTHONDONTWRITEBYTECODE) would charge the handlers alone
for compiling their source on every run. `--from-source` skips that step (and, where bytecode
is already there, measures with it anyway: remove the project's `__pycache__` folders first).
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import time
c0, t0 = time.process_time(), time.perf_counter()
import {module}
c1, t1 = time.process_time(), time.perf_counter()
import aws_lambda_powertools.logging.logger
import aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch
t2 = time.perf_counter()
import boto3
import aws_lambda_powertools.utilities.parameters
t3 = time.perf_counter()
print((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000, (c1 - c0) * 1000)
"""
FIRST_REQUEST = """
import time
import {module}
from shared.edge import SERVED
c0 = time.process_time()
for endpoints in SERVED.values():
    for endpoint in endpoints:
        model = endpoint.body_model()
        if model is None:
            from shared.request_model import NoBody as model
        model.model_rebuild()
print((time.process_time() - c0) * 1000)
"""


def handler_modules() -> dict[str, str]:
    config = yaml.load((ROOT / "serverless.yml").read_text(), Loader=yaml.BaseLoader)
    return {name: fn["handler"].rsplit(".", 1)[0].replace("/", ".")
            for name, fn in config["functions"].items()}


NAIVE = "supabase, stripe, pydantic"
BARE = "pydantic"


def _sample(module: str, probe: str = PROBE) -> tuple[float, ...] | None:
    result = subprocess.run([sys.executable, "-c", probe.format(module=module)], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    return tuple(map(float, result.stdout.split()))


Result = tuple[float, ...]


def measure_all(modules: list[str], handlers: list[str], runs: int) -> dict[str, Result | None]:
    """Median (handler wall, powertools wall, secrets client wall, handler CPU[, first request
    CPU for handlers]) ms per module, the modules interleaved in each round so that a busy
    machine slows all of them alike."""
    samples: dict[str, list[tuple[float, ...]]] = {m: [] for m in modules}
    failed: set[str] = set()
    for _ in range(runs):
        for module in modules:
            if module in failed:
                continue
            sample = _sample(module)
            if sample is not None and module in handlers:
                first = _sample(module, FIRST_REQUEST)
                sample = None if first is None else sample + first
            if sample is None:
                failed.add(module)
            else:
                samples[module].append(sample)
    out: dict[str, Result | None] = {}
    for module, rows in samples.items():
        if module in failed or not rows:
            out[module] = None
            continue
        out[module] = tuple(statistics.median(c) for c in zip(*rows, strict=True))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--from-source", action="store_true",
                        help="do not compile the project's packages before measuring")
    args = parser.parse_args()
    if not args.from_source:
        for package in ("functions", "shared"):
            compileall.compile_dir(ROOT / package, quiet=1)
    handlers = handler_modules()
    results = measure_all([NAIVE, BARE, *handlers.values()], list(handlers.values()), args.runs)
    naive, bare = results[NAIVE], results[BARE]
    if naive is None or bare is None:
        raise SystemExit("the reference imports failed")
    print(f"naive `import {NAIVE}`: {naive[3]:.1f} ms CPU ({naive[0]:.1f} ms wall); bare"
          f" `import {BARE}`: {bare[3]:.1f} ms CPU ({bare[0]:.1f} ms wall)"
          f" (fresh interpreters, median of {args.runs}, interleaved,"
          f" {'the project from source' if args.from_source else 'all from bytecode'})")
    print(f"{'function':16} {'CPU ms':>7} {'wall ms':>8} {'vs naive':>9} {'(wall)':>7} "
          f"{'vs pydantic':>12} {'+ powertools ms':>16} {'+ secrets client ms':>20} "
          f"{'1st request: bodies CPU ms':>27}")
    worst = 0.0
    for name, module in handlers.items():
        result = results[module]
        if result is None:
            print(f"{name:16} (not importable)")
            continue
        ratio = result[3] / naive[3]
        worst = max(worst, ratio)
        print(f"{name:16} {result[3]:7.1f} {result[0]:8.1f} {ratio:8.2f}x "
              f"{result[0] / naive[0]:6.2f}x {result[3] / bare[3]:11.2f}x "
              f"{result[1]:16.1f} {result[2]:20.1f} {result[4]:27.1f}")
    print(f"slowest handler: {worst:.2f}x the naive import (CPU time)")


if __name__ == "__main__":
    main()
