"""Cold import cost of every handler in serverless.yml, and what logging and metrics add to it.

    .venv/bin/python -m benchmarks.handler_imports [--runs 5]

Each measurement is a fresh interpreter (a Lambda cold start imports the handler module once):
the median wall time of `import functions.<name>.handler` next to a naive
`import supabase, stripe, pydantic` and next to a bare `import pydantic` (the floor any handler
that parses its input with pydantic stands on), all measured in the same run, interleaved; then what comes on top in AWS: the Powertools Logger and
EMF provider (imported on the first invocation by shared.observability) and the Secrets Manager
client (boto3 and Powertools parameters, imported during init by functions/__init__.py when
MIMIVIBE_SECRET_ID is set; the secret's fetch itself is a network call, not measured here).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import time
t0 = time.perf_counter()
import {module}
t1 = time.perf_counter()
import aws_lambda_powertools.logging.logger
import aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch
t2 = time.perf_counter()
import boto3
import aws_lambda_powertools.utilities.parameters
t3 = time.perf_counter()
print((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000)
"""


def handler_modules() -> dict[str, str]:
    config = yaml.load((ROOT / "serverless.yml").read_text(), Loader=yaml.BaseLoader)
    return {name: fn["handler"].rsplit(".", 1)[0].replace("/", ".")
            for name, fn in config["functions"].items()}


NAIVE = "supabase, stripe, pydantic"
BARE = "pydantic"


def _sample(module: str) -> tuple[float, ...] | None:
    result = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    return tuple(map(float, result.stdout.split()))


def measure_all(modules: list[str], runs: int) -> dict[str, tuple[float, float, float] | None]:
    """Median (handler, powertools, secrets client) ms per module, the modules interleaved in
    each round so that a busy machine slows all of them alike."""
    samples: dict[str, list[tuple[float, ...]]] = {m: [] for m in modules}
    failed: set[str] = set()
    for _ in range(runs):
        for module in modules:
            if module in failed:
                continue
            sample = _sample(module)
            if sample is None:
                failed.add(module)
            else:
                samples[module].append(sample)
    out: dict[str, tuple[float, float, float] | None] = {}
    for module, rows in samples.items():
        if module in failed or not rows:
            out[module] = None
            continue
        handler, powertools, secrets = (statistics.median(c) for c in zip(*rows, strict=True))
        out[module] = (handler, powertools, secrets)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    handlers = handler_modules()
    results = measure_all([NAIVE, BARE, *handlers.values()], args.runs)
    naive, bare = results[NAIVE], results[BARE]
    if naive is None or bare is None:
        raise SystemExit("the reference imports failed")
    print(f"naive `import {NAIVE}`: {naive[0]:.1f} ms; bare `import {BARE}`: {bare[0]:.1f} ms"
          f" (fresh interpreters, median of {args.runs}, interleaved)")
    print(f"{'function':16} {'handler import ms':>18} {'+ powertools ms':>16} "
          f"{'+ secrets client ms':>20} {'vs naive':>9} {'vs pydantic':>12}")
    worst = 0.0
    for name, module in handlers.items():
        result = results[module]
        if result is None:
            print(f"{name:16} {'(not importable)':>18}")
            continue
        ratio = result[0] / naive[0]
        worst = max(worst, ratio)
        print(f"{name:16} {result[0]:18.1f} {result[1]:16.1f} {result[2]:20.1f} {ratio:8.2f}x "
              f"{result[0] / bare[0]:11.2f}x")
    print(f"slowest handler: {worst:.2f}x the naive import")


if __name__ == "__main__":
    main()
