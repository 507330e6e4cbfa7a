"""Each function reads its own Secrets Manager secret only: its own role, one GetSecretValue
grant on exactly that secret's ARN (no wildcard), and MIMIVIBE_SECRET_ID naming the same secret.

The roles and secrets are generated for every function (deploy/guardrails.js), so this reads the
packaged template (tests/support/packaging.py) next to serverless.yml's function entries.
"""

from __future__ import annotations

from typing import Any

from tests.support.packaging import serverless_config


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role["Properties"]["Policies"]
            for s in policy["PolicyDocument"]["Statement"]]


def test_no_shared_role_grants_secrets() -> None:
    assert "iam" not in serverless_config()["provider"]


def test_each_function_reads_only_its_own_secret_by_exact_arn(template) -> None:
    resources = template["Resources"]
    functions = {f["Properties"]["Handler"]: f for f in resources.values()
                 if f["Type"] == "AWS::Lambda::Function"}
    config = serverless_config()["functions"]
    secrets_by_function = {}
    for name, entry in config.items():
        function = functions[entry["handler"]]["Properties"]
        role = resources[function["Role"]["Fn::GetAtt"][0]]
        assert role["Type"] == "AWS::IAM::Role"
        grants = [s for s in statements(role) if "secretsmanager" in str(s["Action"])]
        assert len(grants) == 1, name
        assert grants[0]["Action"] == "secretsmanager:GetSecretValue"
        secret_ref = grants[0]["Resource"]
        assert set(secret_ref) == {"Ref"}, f"{name}: the secret must be referenced by its ARN"
        secret = resources[secret_ref["Ref"]]
        assert secret["Type"] == "AWS::SecretsManager::Secret"
        assert secret["Properties"]["Name"].endswith(f"/{name}")
        assert function["Environment"]["Variables"]["MIMIVIBE_SECRET_ID"] == secret_ref
        secrets_by_function[name] = secret_ref["Ref"]
    assert len(set(secrets_by_function.values())) == len(config)


def test_no_statement_uses_a_wildcard_resource_for_secrets(template) -> None:
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for statement in statements(resource):
            if "secretsmanager" in str(statement["Action"]):
                assert "*" not in str(statement["Resource"])


def test_secrets_are_kept_when_the_stack_goes_and_start_empty(template) -> None:
    secrets = [r for r in template["Resources"].values()
               if r["Type"] == "AWS::SecretsManager::Secret"]
    assert secrets
    for resource in secrets:
        assert resource["DeletionPolicy"] == "Retain"
        assert resource["Properties"]["SecretString"] == "{}"
