"""serverless.yml packages offline (osls, the Serverless Framework v3 line) into one function and
one public function URL per endpoint, with the code and its requirements in the artifact.

Runs the documented commands (`make package`) in a copy of the deployable files, so nothing in the
checkout changes. Needs node and npm (CI installs them); without them this test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COPIED = ["serverless.yml", "Makefile", "package.json", "package-lock.json", "requirements.txt",
          "requirements.lock"]
ENDPOINTS = {
    "session": "functions/session/handler.handler",
    "purchase": "functions/purchase/handler.handler",
    "stripe-webhook": "functions/stripe_webhook/handler.handler",
    "redeem-invite": "functions/redeem_invite/handler.handler",
    "create-reading": "functions/create_reading/handler.handler",
    "payment-methods": "functions/payment_methods/handler.handler",
    "job-consumer": "functions/job_consumer/handler.handler",
}
SECRET_SETTINGS = {
    "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_JWT_SECRET", "SUPABASE_ANON_KEY", "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET", "UPSTASH_REDIS_REST_TOKEN", "QSTASH_TOKEN",
    "QSTASH_CURRENT_SIGNING_KEY", "QSTASH_NEXT_SIGNING_KEY", "CUSTOM_HS256_SECRET", "LLM_API_KEY",
}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> Path:
    assert shutil.which("node") and shutil.which("npm"), "node and npm are required (see .ci/run)"
    if not (ROOT / "node_modules" / ".bin" / "serverless").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True)
    work = tmp_path_factory.mktemp("sls")
    for name in COPIED:
        shutil.copy2(ROOT / name, work / name)
    for folder in ("functions", "shared", "ops"):
        shutil.copytree(ROOT / folder, work / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (work / ".venv").symlink_to(ROOT / ".venv")
    (work / "node_modules").symlink_to(ROOT / "node_modules")
    # A clean environment: no AWS credentials or profile, nothing reachable but the package index.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(work)
    result = subprocess.run(
        # The copies are newer than the venv stamp; -o keeps make from reinstalling the venv.
        ["make", "-o", ".venv/.installed", "-o", "node_modules/.package-lock.json", "package"],
        cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work / ".serverless"


@pytest.fixture(scope="module")
def template(packaged) -> dict:
    return json.loads((packaged / "cloudformation-template-update-stack.json").read_text())


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_serverless_yml_declares_the_seven_endpoints_with_public_urls():
    config = yaml.load((ROOT / "serverless.yml").read_text(), Loader=yaml.BaseLoader)
    assert {name: fn["handler"] for name, fn in config["functions"].items()} == ENDPOINTS
    assert all(fn["url"] == "true" for fn in config["functions"].values())
    assert config["provider"]["runtime"] == "python3.12"


def test_template_has_one_python_function_per_endpoint(template):
    functions = resources(template, "AWS::Lambda::Function")
    assert sorted(f["Properties"]["Handler"] for f in functions.values()) == sorted(
        ENDPOINTS.values()
    )
    for function in functions.values():
        assert function["Properties"]["Runtime"] == "python3.12"
        assert 10 <= function["Properties"]["Timeout"] <= 300


def test_template_has_one_unauthenticated_url_per_function(template):
    functions = resources(template, "AWS::Lambda::Function")
    urls = resources(template, "AWS::Lambda::Url")
    assert len(urls) == len(ENDPOINTS)
    targets = {u["Properties"]["TargetFunctionArn"]["Fn::GetAtt"][0] for u in urls.values()}
    assert targets == set(functions)
    assert {u["Properties"]["AuthType"] for u in urls.values()} == {"NONE"}
    public = [
        p for p in resources(template, "AWS::Lambda::Permission").values()
        if p["Properties"]["Action"] == "lambda:InvokeFunctionUrl"
    ]
    assert len(public) == len(ENDPOINTS)


def test_job_consumer_gets_the_longest_timeout(template):
    functions = resources(template, "AWS::Lambda::Function")
    timeouts = {k: f["Properties"]["Timeout"] for k, f in functions.items()}
    consumer = timeouts.pop("JobDashconsumerLambdaFunction")
    assert consumer >= 60 and consumer > max(timeouts.values())


def test_environment_names_settings_but_holds_no_secret(template):
    for function in resources(template, "AWS::Lambda::Function").values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["MIMIVIBE_SECRET_ID"]
        assert "SUPABASE_URL" in variables
        assert not SECRET_SETTINGS & set(variables)


def test_artifact_holds_code_and_vendored_requirements_only(packaged):
    with zipfile.ZipFile(packaged.parent / ".build" / "mimivibe.zip") as artifact:
        names = artifact.namelist()
    tops = {name.split("/")[0] for name in names}
    assert {"functions", "shared", "pydantic", "pydantic_core", "stripe", "jwt", "httpx",
            "upstash_redis", "qstash", "aws_lambda_powertools"} <= tops
    assert "shared/settings.py" in names
    # Built for the Lambda runtime, not for the machine that packaged it.
    assert any(n.startswith("pydantic_core/") and "cpython-312-x86_64-linux-gnu" in n
               for n in names)
    assert not tops & {"tests", "devstack", "ops", ".venv", "node_modules", "supabase"}
    assert not [n for n in names if "__pycache__" in n]


def test_artifact_holds_exactly_the_locked_packages(packaged):
    from ops.lock import LOCK, pins

    with zipfile.ZipFile(packaged.parent / ".build" / "mimivibe.zip") as artifact:
        installed = {}
        for name in artifact.namelist():
            top = name.split("/")[0]
            if top.endswith(".dist-info"):
                package, version = top.removesuffix(".dist-info").rsplit("-", 1)
                installed[package.replace("_", "-").lower()] = version
    assert installed == pins(LOCK.read_text("utf-8"))


def _statements(template: dict) -> list[tuple[str, dict]]:
    """Every IAM statement of the template, with the resource that holds it."""
    found = []
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        if "PolicyDocument" in props:
            documents.append(props["PolicyDocument"])
        found += [(name, s) for doc in documents for s in doc["Statement"]]
    return found


def test_each_function_reads_only_its_own_secret_in_the_generated_template(template):
    """The CloudFormation serverless package generates: one role per function, one secret per
    function, and no statement anywhere that could read a secret by wildcard."""
    res = template["Resources"]
    functions = resources(template, "AWS::Lambda::Function")
    secrets = resources(template, "AWS::SecretsManager::Secret")
    assert len(secrets) == len(functions) == len(ENDPOINTS)
    roles = {}
    for name, function in functions.items():
        role = function["Properties"]["Role"]["Fn::GetAtt"]
        assert role[1] == "Arn" and res[role[0]]["Type"] == "AWS::IAM::Role", name
        assert not res[role[0]]["Properties"].get("ManagedPolicyArns"), name
        roles[role[0]] = function["Properties"]["Environment"]["Variables"]["MIMIVIBE_SECRET_ID"]
    assert len(roles) == len(functions), "each function has a role of its own"
    assert len({s["Ref"] for s in roles.values()}) == len(functions)
    assert not resources(template, "AWS::IAM::Policy")
    assert not resources(template, "AWS::IAM::ManagedPolicy")

    grants: dict[str, list[object]] = {}
    for holder, statement in _statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Effect"] != "Allow":
            continue  # the framework's bucket policy denies s3:* without TLS
        assert not any("*" in a for a in actions), (holder, statement)
        if any(a.lower().startswith("secretsmanager:") for a in actions):
            assert actions == ["secretsmanager:GetSecretValue"], (holder, statement)
            assert "*" not in json.dumps(statement["Resource"]), (holder, statement)
            grants.setdefault(holder, []).append(statement["Resource"])
    # Exactly the role's own secret, by reference to that secret's ARN.
    assert grants == {role: [secret] for role, secret in roles.items()}
    for secret in roles.values():
        assert secret["Ref"] in secrets
