"""Cold import cost of every handler in serverless.yml, and what logging and metrics add to it.

    .venv/bin/python -m benchmarks.handler_imports [--runs 5]

Each measurement is a fresh interpreter (a Lambda cold start imports the handler module once):
the median wall time of `import functions.<name>.handler` next to a naive
`import supabase, stripe, pydantic`; then what comes on top in AWS: the Powertools Logger and
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


def measure(module: str, runs: int) -> tuple[float, float, float] | None:
    samples: list[tuple[float, ...]] = []
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return None
        samples.append(tuple(map(float, result.stdout.split())))
    handler, powertools, secrets = (statistics.median(column) for column in zip(*samples, strict=True))
    return handler, powertools, secrets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    naive = measure(NAIVE, args.runs)
    if naive is None:
        raise SystemExit(f"import {NAIVE} failed")
    print(f"naive `import {NAIVE}`: {naive[0]:.1f} ms (fresh interpreter, median of {args.runs})")
    print(f"{'function':16} {'handler import ms':>18} {'+ powertools ms':>16} "
          f"{'+ secrets client ms':>20} {'vs naive':>9}")
    for name, module in handler_modules().items():
        result = measure(module, args.runs)
        if result is None:
            print(f"{name:16} {'(not importable)':>18}")
        else:
            ratio = result[0] / naive[0]
            print(f"{name:16} {result[0]:18.1f} {result[1]:16.1f} {result[2]:20.1f} {ratio:8.2f}x")


if __name__ == "__main__":
    main()
