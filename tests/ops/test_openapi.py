"""The committed OpenAPI document is what the handlers' models generate, covers every function
of serverless.yml, and is served by the local stack's function-URL server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import yaml

from devstack.function_urls import create_app
from devstack.serve import ServerThread
from ops.openapi import DOCUMENT, build_document, main, operations, render

ROOT = Path(__file__).resolve().parents[2]


def test_committed_document_matches_a_fresh_generation() -> None:
    assert DOCUMENT.read_text("utf-8") == render(build_document()), (
        "openapi.json is stale: run .venv/bin/python -m ops.openapi"
    )
    assert main(["--check"]) == 0


def test_every_function_in_serverless_yml_has_its_paths() -> None:
    config = yaml.load((ROOT / "serverless.yml").read_text(), Loader=yaml.BaseLoader)
    document = json.loads(DOCUMENT.read_text("utf-8"))
    documented = {op["x-function"] for path in document["paths"].values() for op in path.values()}
    assert documented == set(config["functions"])
    for path in document["paths"]:
        assert path.split("/")[1] in config["functions"]


def test_request_bodies_refuse_unknown_fields_and_errors_use_the_error_json() -> None:
    document = build_document()
    schemas = document["components"]["schemas"]
    assert schemas["CreateReadingRequest"]["additionalProperties"] is False
    assert schemas["ErrorBody"]["required"] == ["error", "request_id"]
    for path in document["paths"].values():
        for op in path.values():
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorBody"}


def test_security_schemes_name_each_caller() -> None:
    document = build_document()
    by_function = {op.function: op.security for op in operations()}
    assert by_function["stripe-webhook"] == "stripeSignature"
    assert by_function["job-consumer"] == "qstashSignature"
    assert by_function["session"] == "providerToken"
    assert by_function["create-reading"] == "accessToken"
    assert set(document["components"]["securitySchemes"]) == set(by_function.values())


def test_check_reports_a_stale_document(tmp_path) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n")
    assert main(["--check", "--output", str(stale)]) == 1


def test_function_url_server_serves_the_document_with_its_own_address(monkeypatch) -> None:
    import os

    saved = dict(os.environ)
    try:
        app = create_app(ROOT / "serverless.yml", {})
        with ServerThread(app, name="function-urls") as server:
            served = httpx.get(server.url + "/openapi.json").json()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert served["servers"] == [{"url": server.url}]
    assert served["paths"] == json.loads(DOCUMENT.read_text("utf-8"))["paths"]
