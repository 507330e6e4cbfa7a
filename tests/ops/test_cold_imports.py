"""What a cold start imports, and the settings loader that keeps it small.

Each handler's import path stays free of the modules that cost a cold start without serving its
first request: asyncio, pydantic-settings, pydantic's plugin discovery (importlib.metadata), and
the clients that are imported on first use (supabase, stripe, httpx, PyJWT, Powertools). And
no model of the project is built at import: each builds its validator when it first validates,
so a cold start builds only the models of the request it serves.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from shared.errors import ConfigError
from shared.settings import Settings, get_settings, reset_settings

ROOT = Path(__file__).resolve().parents[2]
DEFERRED = ["asyncio", "pydantic_settings", "importlib.metadata", "email", "supabase", "stripe",
            "httpx", "jwt", "aws_lambda_powertools", "boto3"]
REQUIRED = {"SUPABASE_URL": "http://127.0.0.1:9", "SUPABASE_ANON_KEY": "anon",
            "SUPABASE_SERVICE_ROLE_KEY": "service", "SUPABASE_JWT_SECRET": "jwt-s3cr3t"}


def _handler_modules() -> list[str]:
    config = yaml.load((ROOT / "serverless.yml").read_text(), Loader=yaml.BaseLoader)
    return [fn["handler"].rsplit(".", 1)[0].replace("/", ".") for fn in config["functions"].values()]


def test_no_handler_imports_what_its_first_request_does_not_need():
    modules = _handler_modules()
    probe = (f"import sys\nfor m in {modules!r}: __import__(m)\n"
             f"import json; print(json.dumps([m for m in {DEFERRED!r} if m in sys.modules]))")
    env = {"PATH": "/usr/bin:/bin", **REQUIRED}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(result.stdout) == []


def test_no_handler_builds_a_model_at_import():
    modules = _handler_modules()
    probe = (f"for m in {modules!r}: __import__(m)\n"
             "import json\nfrom pydantic import BaseModel\n"
             "def ours(cls):\n"
             "    for sub in cls.__subclasses__():\n"
             "        if sub.__module__.split('.')[0] in ('shared', 'functions'):\n"
             "            yield sub\n"
             "        yield from ours(sub)\n"
             "models = set(ours(BaseModel))\n"
             "print(json.dumps([len(models),"
             " sorted(f'{c.__module__}.{c.__qualname__}' for c in models"
             " if c.__pydantic_complete__)]))")
    env = {"PATH": "/usr/bin:/bin", **REQUIRED}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True, timeout=60)
    defined, built = json.loads(result.stdout)
    assert defined >= len(modules)  # the probe sees the handlers' models
    assert built == []


def test_a_deferred_model_validates_as_before():
    from shared.payments import PurchaseResponse
    from shared.request_model import RequestModel

    class Body(RequestModel):
        stars: int
        note: str = ""

    assert Body.model_validate({"stars": "3"}).stars == 3
    with pytest.raises(ValidationError):
        Body.model_validate({"stars": 3, "extra": 1})
    with pytest.raises(ValidationError):
        Body.model_validate({"stars": 3, "note": "a\x00b"})
    assert "payment_id" in PurchaseResponse.model_json_schema()["properties"]


def test_settings_read_the_environment_by_field_name_in_any_case(monkeypatch):
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("rate_limit_requests", "7")
    monkeypatch.setenv("Llm_Timeout_Seconds", "2.5")
    monkeypatch.delenv("MAX_PENDING_READINGS", raising=False)

    settings = Settings.model_validate({})

    assert settings.supabase_url == "http://127.0.0.1:9"
    assert settings.supabase_jwt_secret.get_secret_value() == "jwt-s3cr3t"
    assert (settings.rate_limit_requests, settings.llm_timeout_seconds) == (7, 2.5)
    assert settings.max_pending_readings == 3  # the default where nothing is set
    assert "jwt-s3cr3t" not in repr(settings)


def test_arguments_win_over_the_environment(monkeypatch):
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RATE_LIMIT_REQUESTS", "7")

    assert Settings.model_validate({"rate_limit_requests": 9}).rate_limit_requests == 9
    assert Settings.model_validate({"supabase_url": "http://example.test"}).supabase_url == "http://example.test"


def test_invalid_or_missing_settings_fail_the_cold_start_naming_them(monkeypatch):
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MIMIVIBE_SECRET_ID", raising=False)
    monkeypatch.setenv("ACCESS_TOKEN_TTL_SECONDS", "5")
    monkeypatch.delenv("SUPABASE_JWT_SECRET")
    reset_settings()
    try:
        with pytest.raises(ConfigError) as caught:
            get_settings()
    finally:
        reset_settings()
    assert "ACCESS_TOKEN_TTL_SECONDS" in str(caught.value)
    assert "SUPABASE_JWT_SECRET" in str(caught.value)
