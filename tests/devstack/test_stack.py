"""The local stack starts every service on free ports, describes itself in stack.json, wires the
functions' environment to the running services, and stops cleanly."""

from __future__ import annotations

import os
import stat

import httpx
import pytest

from devstack.lambda_context import load_functions
from devstack.stack import PROJECT_ROOT, LocalStack, read_stack_file
from devstack.stack_services import StackSecrets


@pytest.fixture(scope="module")
def stack(tmp_path_factory, database_factory):
    root = tmp_path_factory.mktemp("stack")
    database_url = database_factory(migrate=False, bootstrap=False)
    before = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    with LocalStack(root=root, database_url=database_url, redis_url="",
                    preferred_ports=False) as running:
        yield running
    assert not (root / "stack.json").exists()
    assert {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"} == before


def test_stack_file_describes_the_running_stack(stack):
    info = read_stack_file(stack.root)
    assert info is not None and info == stack.info
    assert stat.S_IMODE(stack.stack_file.stat().st_mode) == 0o600
    for key in ("anon_key", "service_role_key", "jwt_secret", "database_url", "redis_url"):
        assert info[key]
    assert set(info["urls"]) >= {"functions", "supabase", "rest", "upstash"}
    assert len(info["jwt_secret"]) >= 32


def test_function_urls_serve_every_function_of_serverless_yml(stack):
    listed = httpx.get(stack.info["urls"]["functions"] + "/").json()["functions"]
    assert set(listed) == set(load_functions(PROJECT_ROOT / "serverless.yml"))
    assert stack.info["functions"] == listed


def test_functions_environment_points_at_the_running_services(stack):
    env = stack.environment
    assert env["SUPABASE_URL"] == stack.info["urls"]["supabase"]
    assert env["SUPABASE_SERVICE_ROLE_KEY"] == stack.info["service_role_key"]
    assert env["UPSTASH_REDIS_REST_URL"] == stack.info["urls"]["upstash"]
    assert os.environ["SUPABASE_URL"] == env["SUPABASE_URL"]  # what handlers import under


def test_rest_gateway_is_migrated_and_honours_the_keys(stack):
    rest = stack.info["urls"]["rest"]
    service = stack.info["service_role_key"]
    as_service = httpx.get(f"{rest}/users?select=id&limit=1",
                           headers={"apikey": service, "Authorization": f"Bearer {service}"})
    assert as_service.status_code == 200 and isinstance(as_service.json(), list)
    as_anon = httpx.get(f"{rest}/users?select=id", headers={"apikey": stack.info["anon_key"]})
    assert as_anon.status_code in (401, 403) or as_anon.json() == []


def test_upstash_bridge_requires_the_stack_token(stack):
    upstash = stack.info["upstash"]
    ok = httpx.post(upstash["url"], json=["PING"],
                    headers={"Authorization": f"Bearer {upstash['token']}"})
    assert ok.json() == {"result": "PONG"}
    assert httpx.post(upstash["url"], json=["PING"],
                      headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_local_secrets_are_generated_once_and_kept(stack):
    again = StackSecrets(stack.root / "secrets.json")
    assert again.get("jwt_secret") == stack.info["jwt_secret"]
    assert again.anon_key == stack.info["anon_key"]
    assert stat.S_IMODE((stack.root / "secrets.json").stat().st_mode) == 0o600


def test_stack_file_carries_every_stand_ins_local_secrets(stack):
    info = read_stack_file(stack.root)
    assert info is not None
    env = info["environment"]
    assert info["supabase"]["anon_key"] == env["SUPABASE_ANON_KEY"]
    assert info["supabase"]["service_role_key"] == env["SUPABASE_SERVICE_ROLE_KEY"]
    assert info["upstash"]["token"] == env["UPSTASH_REDIS_REST_TOKEN"]
    assert info["qstash"]["qstash_token"] == env["QSTASH_TOKEN"]
    assert info["qstash"]["qstash_current_signing_key"] == env["QSTASH_CURRENT_SIGNING_KEY"]
    assert info["qstash"]["qstash_next_signing_key"] == env["QSTASH_NEXT_SIGNING_KEY"]
    assert info["identity"]["hs256_secret"] == env["CUSTOM_HS256_SECRET"]
    if "stripe" in info["urls"]:  # the stand-in runs unless a real Stripe test key is set
        assert info["stripe"]["api_key"] == env["STRIPE_SECRET_KEY"]
        assert info["stripe"]["webhook_secret"] == env["STRIPE_WEBHOOK_SECRET"]
    for secret in (env["UPSTASH_REDIS_REST_TOKEN"], env["QSTASH_TOKEN"],
                   env["CUSTOM_HS256_SECRET"]):
        assert len(secret) >= 16
