"""serverless.yml packages offline (osls, the Serverless Framework v3 line) into one function and
one public function URL per endpoint, with the code and its requirements in the artifact.

The template comes from `make package`, run once per session in a copy of the deployable files
(tests/support/packaging.py). Every check iterates over the functions serverless.yml declares.
"""

from __future__ import annotations

import json
import zipfile

from tests.support.packaging import ROOT, resources, serverless_config

SECRET_SETTINGS = {
    "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_JWT_SECRET", "SUPABASE_ANON_KEY", "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET", "UPSTASH_REDIS_REST_TOKEN", "QSTASH_TOKEN",
    "QSTASH_CURRENT_SIGNING_KEY", "QSTASH_NEXT_SIGNING_KEY", "CUSTOM_HS256_SECRET", "LLM_API_KEY",
}
FUNCTIONS: dict[str, dict] = serverless_config()["functions"]


def test_every_function_is_a_handler_module_of_its_name_with_a_public_url():
    for name, fn in FUNCTIONS.items():
        module = name.replace("-", "_")
        assert fn["handler"] == f"functions/{module}/handler.handler", name
        assert (ROOT / "functions" / module / "handler.py").is_file(), name
        assert fn["url"] == "true", name
    assert serverless_config()["provider"]["runtime"] == "python3.12"


def test_template_has_one_python_function_per_endpoint(template):
    functions = resources(template, "AWS::Lambda::Function")
    assert sorted(f["Properties"]["Handler"] for f in functions.values()) == sorted(
        fn["handler"] for fn in FUNCTIONS.values()
    )
    for function in functions.values():
        assert function["Properties"]["Runtime"] == "python3.12"
        assert 10 <= function["Properties"]["Timeout"] <= 300


def test_template_has_one_unauthenticated_url_per_function_on_its_live_alias(template):
    res = template["Resources"]
    functions = resources(template, "AWS::Lambda::Function")
    urls = resources(template, "AWS::Lambda::Url")
    assert len(urls) == len(FUNCTIONS)
    targets = {u["Properties"]["TargetFunctionArn"]["Fn::GetAtt"][0] for u in urls.values()}
    assert targets == set(functions)
    assert {u["Properties"]["AuthType"] for u in urls.values()} == {"NONE"}
    assert {u["Properties"]["Qualifier"] for u in urls.values()} == {"live"}
    for action in ("lambda:InvokeFunctionUrl", "lambda:InvokeFunction"):
        public = [p["Properties"] for p in resources(template, "AWS::Lambda::Permission").values()
                  if p["Properties"]["Action"] == action and p["Properties"]["Principal"] == "*"]
        assert len(public) == len(FUNCTIONS), action
        # Granted on the alias (Ref of an alias is its qualified ARN), not on $LATEST.
        aliases = {p["FunctionName"]["Ref"] for p in public}
        assert {res[a]["Type"] for a in aliases} == {"AWS::Lambda::Alias"}
        assert {res[a]["Properties"]["FunctionName"]["Ref"] for a in aliases} == set(functions)


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
    assert not tops & {"tests", "devstack", "ops", "deploy", ".venv", "node_modules", "supabase"}
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
    assert len(secrets) == len(functions) == len(FUNCTIONS)
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
