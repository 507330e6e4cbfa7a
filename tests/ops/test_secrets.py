"""Secrets come from AWS Secrets Manager at cold start, cached, and refreshed after a bounded age."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from pydantic import SecretStr

from shared.errors import ConfigError
from shared.secrets import AwsSecret, use_secret_source
from shared.settings import get_settings, reset_settings
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
BASE = {
    "SUPABASE_URL": "https://project.supabase.co",
    "SUPABASE_ANON_KEY": "anon-key",
    "SUPABASE_SERVICE_ROLE_KEY": "service-key-v1",
    "SUPABASE_JWT_SECRET": "jwt-secret-0123456789-0123456789-01",
}


@pytest.fixture
def secrets_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    for name in BASE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="ap-southeast-1")
    use_secret_source(None)
    reset_settings()


def test_settings_are_loaded_from_the_named_secret(secrets_client) -> None:
    secrets_client.create_secret(Name="mimivibe/test/session", SecretString=json.dumps(BASE))
    use_secret_source(AwsSecret("mimivibe/test/session", boto3_client=secrets_client))
    reset_settings()

    settings = get_settings()

    assert settings.supabase_url == "https://project.supabase.co"
    assert settings.supabase_service_role_key.get_secret_value() == "service-key-v1"
    assert "service-key-v1" not in repr(settings)


def test_secret_is_cached_within_the_refresh_interval(secrets_client) -> None:
    secrets_client.create_secret(Name="mimivibe/test/cached", SecretString=json.dumps(BASE))
    use_secret_source(AwsSecret("mimivibe/test/cached", max_age=300, boto3_client=secrets_client))
    reset_settings()
    first = get_settings()

    rotated = {**BASE, "SUPABASE_SERVICE_ROLE_KEY": "service-key-v2"}
    secrets_client.put_secret_value(SecretId="mimivibe/test/cached", SecretString=json.dumps(rotated))

    assert get_settings() is first
    assert get_settings().supabase_service_role_key.get_secret_value() == "service-key-v1"


def test_rotation_is_picked_up_after_the_refresh_interval(secrets_client) -> None:
    secrets_client.create_secret(Name="mimivibe/test/rotating", SecretString=json.dumps(BASE))
    use_secret_source(AwsSecret("mimivibe/test/rotating", max_age=1, boto3_client=secrets_client))
    reset_settings()
    assert get_settings().supabase_service_role_key.get_secret_value() == "service-key-v1"

    rotated = {**BASE, "SUPABASE_SERVICE_ROLE_KEY": "service-key-v2"}
    secrets_client.put_secret_value(SecretId="mimivibe/test/rotating", SecretString=json.dumps(rotated))

    # Picked up by the first read after the refresh interval (max_age=1) has passed.
    wait_for(current_service_key, lambda key: key == "service-key-v2", timeout=5)


def current_service_key() -> str:
    return get_settings().supabase_service_role_key.get_secret_value()


def test_a_missing_secret_fails_loudly(secrets_client) -> None:
    use_secret_source(AwsSecret("mimivibe/test/absent", boto3_client=secrets_client))
    reset_settings()

    with pytest.raises(ConfigError, match="mimivibe/test/absent"):
        get_settings()


def test_a_secret_that_is_not_an_object_of_strings_is_refused(secrets_client) -> None:
    secrets_client.create_secret(Name="mimivibe/test/bad", SecretString=json.dumps(["x"]))
    use_secret_source(AwsSecret("mimivibe/test/bad", boto3_client=secrets_client))
    reset_settings()

    with pytest.raises(ConfigError, match="JSON object of strings"):
        get_settings()


@pytest.fixture
def moto_server() -> Iterator[str]:
    """A moto server (what a fresh interpreter, a cold start, talks to)."""
    from moto.server import ThreadedMotoServer

    from devstack.ports import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def handler_modules() -> list[str]:
    import yaml

    config = yaml.load((ROOT / "serverless.yml").read_text(), Loader=yaml.BaseLoader)
    return [fn["handler"].rsplit(".", 1)[0].replace("/", ".") for fn in config["functions"].values()]


# Imports every handler the way the Lambda runtime does, in one fresh interpreter; prints per
# module "ok" or the error's type and message.
COLD_START = """
import importlib, json, sys
out = {}
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
        from shared.settings import get_settings
        out[module] = "ok " + get_settings().supabase_service_role_key.get_secret_value()
    except Exception as exc:
        out[module] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def cold_start(endpoint: str, secret_id: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "ap-southeast-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "MIMIVIBE_SECRET_ID": secret_id,
    }
    result = subprocess.run([sys.executable, "-c", COLD_START, *handler_modules()], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout)


def test_cold_start_of_every_handler_fails_when_its_secret_is_missing(moto_server) -> None:
    outcomes = cold_start(moto_server, "mimivibe/prod/missing")

    assert len(outcomes) == 8
    for module, outcome in outcomes.items():
        assert outcome.startswith("ConfigError"), (module, outcome)
        assert "mimivibe/prod/missing" in outcome, (module, outcome)


def test_cold_start_loads_the_named_secret(moto_server) -> None:
    client = boto3.client("secretsmanager", endpoint_url=moto_server, region_name="ap-southeast-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_secret(Name="mimivibe/prod/session", SecretString=json.dumps(BASE))

    outcomes = cold_start(moto_server, "mimivibe/prod/session")

    assert set(outcomes.values()) == {"ok service-key-v1"}


def test_without_a_secret_id_handlers_import_neither_boto3_nor_powertools() -> None:
    code = ("import sys, importlib\n"
            f"for m in {handler_modules()!r}: importlib.import_module(m)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules}"
            " & {'boto3', 'botocore', 'aws_lambda_powertools'}))")
    env = {k: v for k, v in os.environ.items() if k != "MIMIVIBE_SECRET_ID"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


ROTATING = {
    **BASE,
    "UPSTASH_REDIS_REST_URL": "http://127.0.0.1:9",
    "UPSTASH_REDIS_REST_TOKEN": "upstash-v1",
    "STRIPE_SECRET_KEY": "sk_test_keyv1",
    "STRIPE_WEBHOOK_SECRET": "whsec_v1",
    "QSTASH_TOKEN": "qstash-v1",
    "QSTASH_CURRENT_SIGNING_KEY": "sig_current_v1",
    "QSTASH_NEXT_SIGNING_KEY": "sig_next_v1",
    "JOB_CONSUMER_URL": "https://consumer.example",
}


def client_keys() -> dict[str, object]:
    """The key each container client actually sends or checks with, as built right now."""
    from devstack.stripe_standin.signing import signature_header
    from shared.bootstrap import services
    from shared.errors import InvalidWebhookSignature

    def webhook_accepts(secret: str) -> bool:
        # A signed delivery that is not JSON: past the signature it is refused as a payload.
        body = b"not json"
        try:
            services().webhooks.handle(body, signature_header(body, secret))
        except InvalidWebhookSignature:
            return False
        except Exception:
            return True
        return True

    built = services()
    database = built.database
    redis = built.redis
    verifier = built.qstash_verifier
    limiter = built.rate_limiter
    assert limiter is not None
    return {
        "service": database.service.headers["apikey"],
        "user": database.for_user("token").headers["apikey"],
        "stripe": built.stripe._requestor.api_key,
        "webhook v1": webhook_accepts("whsec_v1"),
        "webhook v2": webhook_accepts("whsec_v2"),
        "qstash": (verifier._current_key.get_secret_value(),
                   verifier._next_key.get_secret_value()),
        "redis": redis._headers["Authorization"],
        "limiter uses the new redis": limiter._redis is redis,
    }


def test_a_rotated_secret_reaches_every_client_within_the_refresh_interval(
        secrets_client) -> None:
    secrets_client.create_secret(Name="mimivibe/test/clients", SecretString=json.dumps(ROTATING))
    use_secret_source(AwsSecret("mimivibe/test/clients", max_age=1, boto3_client=secrets_client))
    reset_settings()
    before = client_keys()
    assert before["stripe"] == "sk_test_keyv1" and before["webhook v1"] is True
    assert before["webhook v2"] is False and before["service"] == "service-key-v1"

    rotated = {**ROTATING, "SUPABASE_SERVICE_ROLE_KEY": "service-key-v2",
               "SUPABASE_ANON_KEY": "anon-key-v2", "UPSTASH_REDIS_REST_TOKEN": "upstash-v2",
               "STRIPE_SECRET_KEY": "sk_test_keyv2", "STRIPE_WEBHOOK_SECRET": "whsec_v2",
               "QSTASH_CURRENT_SIGNING_KEY": "sig_current_v2",
               "QSTASH_NEXT_SIGNING_KEY": "sig_next_v2"}
    secrets_client.put_secret_value(SecretId="mimivibe/test/clients",
                                    SecretString=json.dumps(rotated))
    deadline = time.monotonic() + 10
    while get_settings().stripe_webhook_secret != SecretStr("whsec_v2"):
        assert time.monotonic() < deadline, "the rotation was not picked up"
        time.sleep(0.1)

    assert client_keys() == {
        "service": "service-key-v2", "user": "anon-key-v2", "stripe": "sk_test_keyv2",
        "webhook v1": False, "webhook v2": True,
        "qstash": ("sig_current_v2", "sig_next_v2"), "redis": "Bearer upstash-v2",
        "limiter uses the new redis": True,
    }
