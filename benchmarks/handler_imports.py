"""Cold import cost of every handler in serverless.yml, and what logging and metrics add to it.

    .venv/bin/python -m benchmarks.handler_imports [--runs 5]

Each measurement is a fresh interpreter (a Lambda cold start imports the handler module once):
the median wall time of `import functions.<name>.handler` next to a naive
`import supabase, stripe, pydantic`, then of importing the Powertools Logger and EMF provider on top (what the first invocation pays, since shared.observability
imports Powertools on first use).
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
print((t1 - t0) * 1000, (t2 - t1) * 1000)
"""


def handler_modules() -> dict[str, str]:
    config = yaml.load((ROOT / "serverless.yml").read_text(), Loader=yaml.BaseLoader)
    return {name: fn["handler"].rsplit(".", 1)[0].replace("/", ".")
            for name, fn in config["functions"].items()}


NAIVE = "supabase, stripe, pydantic"


def measure(module: str, runs: int) -> tuple[float, float] | None:
    handler_ms, powertools_ms = [], []
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return None
        a, b = map(float, result.stdout.split())
        handler_ms.append(a)
        powertools_ms.append(b)
    return statistics.median(handler_ms), statistics.median(powertools_ms)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    naive = measure(NAIVE, args.runs)
    if naive is None:
        raise SystemExit(f"import {NAIVE} failed")
    print(f"naive `import {NAIVE}`: {naive[0]:.1f} ms (fresh interpreter, median of {args.runs})")
    print(f"{'function':16} {'handler import ms':>18} {'+ powertools ms':>16} {'vs naive':>9}")
    for name, module in handler_modules().items():
        result = measure(module, args.runs)
        if result is None:
            print(f"{name:16} {'(not importable)':>18}")
        else:
            ratio = result[0] / naive[0]
            print(f"{name:16} {result[0]:18.1f} {result[1]:16.1f} {ratio:8.2f}x")


if __name__ == "__main__":
    main()
