"""`make package` run once per test session in a copy of the deployable files (nothing in the
checkout changes), and what it produced: the CloudFormation template and the artifact.

Needs node and npm (CI installs them); without them the tests that use it fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
COPIED = ["serverless.yml", "Makefile", "package.json", "package-lock.json", "requirements.txt",
          "requirements.lock"]
COPIED_FOLDERS = ["functions", "shared", "deploy", "ops"]
TEMPLATE = "cloudformation-template-update-stack.json"


def serverless_config() -> dict[str, Any]:
    """serverless.yml as plain strings (CloudFormation tags left as text)."""
    return dict(yaml.load((ROOT / "serverless.yml").read_text(), Loader=yaml.BaseLoader))


def clean_environment(home: Path) -> dict[str, str]:
    """No AWS credentials or profile: packaging must not need an account."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(home)
    return env


def serverless(work: Path, *args: str) -> None:
    """`serverless <args>` in the packaged copy, offline, as the Makefile runs it."""
    env = clean_environment(work) | {
        "SLS_TELEMETRY_DISABLED": "1", "SLS_NOTIFICATIONS_MODE": "off",
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "offline",
        "AWS_REGION": "ap-southeast-1",
    }
    result = subprocess.run([str(work / "node_modules" / ".bin" / "serverless"), *args], cwd=work,
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `.serverless` folder `make package` (stage dev) wrote."""
    assert shutil.which("node") and shutil.which("npm"), "node and npm are required (see .ci/run)"
    if not (ROOT / "node_modules" / ".bin" / "serverless").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True)
    work = tmp_path_factory.mktemp("sls")
    for name in COPIED:
        shutil.copy2(ROOT / name, work / name)
    for folder in COPIED_FOLDERS:
        shutil.copytree(ROOT / folder, work / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (work / ".venv").symlink_to(ROOT / ".venv")
    (work / "node_modules").symlink_to(ROOT / "node_modules")
    result = subprocess.run(
        # The copies are newer than the venv stamp; -o keeps make from reinstalling the venv.
        ["make", "-o", ".venv/.installed", "-o", "node_modules/.package-lock.json", "package"],
        cwd=work, env=clean_environment(work), capture_output=True, text=True, timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work / ".serverless"


@pytest.fixture(scope="session")
def template(packaged: Path) -> dict[str, Any]:
    return dict(json.loads((packaged / TEMPLATE).read_text()))


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}
