"""What a cold start imports, and the settings loader that keeps it small.

Each handler's import path stays free of the modules that cost a cold start without serving its
first request: asyncio, pydantic-settings, pydantic's plugin discovery (importlib.metadata), and
the clients that are imported on first use (supabase, stripe, httpx, PyJWT, Powertools). And
no pydantic model class is defined at import: the endpoints name their bodies, imported with the
first request; each model builds its validator when it first validates, so a cold start builds
only the models of the request it serves.
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
            "httpx", "jwt", "aws_lambda_powertools", "boto3", "pydantic.main",
            "pydantic._internal._model_construction", "shared.settings", "shared.request_model"]
REQUIRED = {"SUPABASE_URL": "http://127.0.0.1:9", "SUPABASE_ANON_KEY": "anon",
            "SUPABASE_SERVICE_ROLE_KEY": "service", "SUPABASE_JWT_SECRET": "jwt-s3cr3t"}


def _handler_modules() -> list[str]:
    config = yaml.load((ROOT / "serverless.yml").read_text(), Loader=yaml.BaseLoader)
    return [fn["handler"].rsplit(".", 1)[0].replace("/", ".") for fn in config["functions"].values()]


def _probe(code: str) -> object:
    env = {"PATH": "/usr/bin:/bin", **REQUIRED}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True, timeout=60)
    return json.loads(result.stdout.splitlines()[-1])  # the lines before are the request's logs


@pytest.mark.parametrize("module", _handler_modules())
def test_no_handler_imports_what_its_first_request_does_not_need(module):
    # Each in a fresh interpreter, as a cold start imports it. Without pydantic.main no model
    # class can exist: defining one imports pydantic's model construction (about a quarter of
    # the naive import), so the bodies, NoBody, the settings and the use cases come with the
    # first request.
    loaded = _probe(f"import sys, json\nimport {module}\n"
                    f"print(json.dumps([m for m in {DEFERRED!r} if m in sys.modules]))")
    assert loaded == []


def test_every_body_an_endpoint_names_is_the_model_the_api_documents():
    # The handlers name their bodies as "module:Class": each name resolves, on first use, to
    # the model openapi.json documents for that operation (none where none is documented).
    modules = _handler_modules()
    served = _probe(
        f"import json\nfor m in {modules!r}: __import__(m)\n"
        "from shared.edge import ANY_PATH, SERVED\n"
        "from ops.openapi import operations\n"
        "def name(model): return None if model is None else f'{model.__module__}.{model.__name__}'\n"
        "served = sorted((f, e.method, f'/{f}' + ('' if e.path in (ANY_PATH, '/') else e.path),"
        " name(e.body_model())) for f, endpoints in SERVED.items() for e in endpoints)\n"
        "documented = sorted((o.function, o.method.upper(), o.path, name(o.request))"
        " for o in operations())\n"
        "print(json.dumps([served, documented]))")
    assert isinstance(served, list)
    assert served[0] == served[1]
    assert len(served[0]) >= len(modules)


def test_a_named_body_is_imported_and_validates_on_the_first_request():
    # The session endpoint parses its body before it asks anything of the database: a field
    # it does not know is a 422 naming the field, as when the model was imported with the handler.
    out = _probe(
        "import json, sys\nimport functions.session.handler as h\n"
        "before = 'shared.sessions' in sys.modules\n"
        "event = {'requestContext': {'http': {'method': 'POST'}}, 'rawPath': '/',"
        " 'body': json.dumps({'name': 'Mimi', 'age': 3})}\n"
        "response = h.handler(event, None)\n"
        "from shared.sessions import SessionRequest\n"
        "print(json.dumps([before, response['statusCode'], json.loads(response['body']),"
        " SessionRequest.__pydantic_complete__]))")
    assert isinstance(out, list)
    before, status, body, built = out
    assert (before, status, built) == (False, 422, True)
    assert body["error"]["code"] == "validation_error"
    assert [e["field"] for e in body["error"]["details"]["errors"]] == ["age"]


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
