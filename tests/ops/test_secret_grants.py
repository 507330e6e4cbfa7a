"""Each function reads its own Secrets Manager secret only: its own role, one GetSecretValue
grant on exactly that secret's ARN (no wildcard), and MIMIVIBE_SECRET_ID naming the same secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


class CloudFormationLoader(yaml.SafeLoader):
    """Reads serverless.yml's CloudFormation short forms (!Ref, !GetAtt, ...) as plain dicts."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    else:
        value = loader.construct_sequence(node, deep=True)
    return {suffix: value}


CloudFormationLoader.add_multi_constructor("!", _tag)


def load() -> dict[str, Any]:
    return yaml.load((ROOT / "serverless.yml").read_text(), Loader=CloudFormationLoader)


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role["Properties"]["Policies"]
            for s in policy["PolicyDocument"]["Statement"]]


def test_no_shared_role_grants_secrets() -> None:
    assert "iam" not in load()["provider"]


def test_each_function_reads_only_its_own_secret_by_exact_arn() -> None:
    config = load()
    resources = config["resources"]["Resources"]
    secrets_by_function = {}
    for name, function in config["functions"].items():
        role = resources[function["role"]]
        assert role["Type"] == "AWS::IAM::Role"
        grants = [s for s in statements(role) if "secretsmanager" in str(s["Action"])]
        assert len(grants) == 1, name
        assert grants[0]["Action"] == "secretsmanager:GetSecretValue"
        secret_ref = grants[0]["Resource"]
        assert set(secret_ref) == {"Ref"}, f"{name}: the secret must be referenced by its ARN"
        secret = resources[secret_ref["Ref"]]
        assert secret["Type"] == "AWS::SecretsManager::Secret"
        assert secret["Properties"]["Name"].endswith(f"/{name}")
        assert function["environment"]["MIMIVIBE_SECRET_ID"] == secret_ref
        secrets_by_function[name] = secret_ref["Ref"]
    assert len(set(secrets_by_function.values())) == len(config["functions"])


def test_no_statement_uses_a_wildcard_resource_for_secrets() -> None:
    resources = load()["resources"]["Resources"]
    for resource in resources.values():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for statement in statements(resource):
            if "secretsmanager" in str(statement["Action"]):
                assert "*" not in str(statement["Resource"])


def test_secrets_are_kept_when_the_stack_goes_and_start_empty() -> None:
    for resource in load()["resources"]["Resources"].values():
        if resource["Type"] == "AWS::SecretsManager::Secret":
            assert resource["DeletionPolicy"] == "Retain"
            assert resource["Properties"]["SecretString"] == "{}"
