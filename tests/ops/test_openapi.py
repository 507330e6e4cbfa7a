"""The committed OpenAPI document is what the handlers' models and a migrated database's catalog
generate, covers every function of serverless.yml, the REST tables and RPCs granted to
`authenticated` and every error code, and is served by the local stack's function-URL server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml

from devstack.function_urls import create_app
from devstack.serve import ServerThread
from ops.openapi import DOCUMENT, build_document, main, operations, render
from ops.openapi_rest import Catalog, read_catalog
from shared.errors import error_catalog

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def catalog_db(database_factory) -> str:
    return database_factory(migrate=True)


@pytest.fixture(scope="module")
def catalog(catalog_db) -> Catalog:
    return read_catalog(catalog_db)


def _function_paths(document: dict) -> dict:
    return {p: item for p, item in document["paths"].items() if not p.startswith("/rest/")}


def test_committed_document_matches_a_fresh_generation(catalog, catalog_db) -> None:
    assert DOCUMENT.read_text("utf-8") == render(build_document(catalog)), (
        "openapi.json is stale: run .venv/bin/python -m ops.openapi"
    )
    assert main(["--check", "--database-url", catalog_db]) == 0


def test_every_function_in_serverless_yml_has_its_paths() -> None:
    config = yaml.load((ROOT / "serverless.yml").read_text(), Loader=yaml.BaseLoader)
    document = json.loads(DOCUMENT.read_text("utf-8"))
    paths = _function_paths(document)
    documented = {op["x-function"] for path in paths.values() for op in path.values()}
    assert documented == set(config["functions"])
    for path in paths:
        assert path.split("/")[1] in config["functions"]


def test_the_rest_surface_is_what_authenticated_is_granted(catalog_db, catalog) -> None:
    document = build_document(catalog)
    with psycopg.connect(catalog_db) as conn:
        readable = {r[0] for r in conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = 'public' and c.relkind = 'r' "
            "and has_any_column_privilege('authenticated', c.oid, 'SELECT')")}
        callable_ = {r[0] for r in conn.execute(
            "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
            "where n.nspname = 'public' "
            "and has_function_privilege('authenticated', p.oid, 'EXECUTE')")}
    tables = {p.removeprefix("/rest/v1/") for p in document["paths"]
              if p.startswith("/rest/v1/") and not p.startswith("/rest/v1/rpc/")}
    rpcs = {p.removeprefix("/rest/v1/rpc/") for p in document["paths"]
            if p.startswith("/rest/v1/rpc/")}
    assert tables == readable
    assert rpcs == callable_
    # The app's surface (docs/API.md) is all there.
    assert {"users", "wallet_transactions", "payments", "user_payment_methods", "tarot_readings",
            "jobs", "job_attempts", "user_invites"} <= tables
    assert {"exchange_coins", "search_readings", "reading_status", "set_default_payment_method",
            "wallet_summary"} <= rpcs
    # Only the profile's name and picture are writable.
    patchable = {p for p, item in document["paths"].items() if "patch" in item}
    assert patchable == {"/rest/v1/users"}
    body = document["paths"]["/rest/v1/users"]["patch"]["requestBody"]["content"]
    assert set(body["application/json"]["schema"]["properties"]) == {"name", "picture_url"}
    users = document["components"]["schemas"]["rest.users"]["properties"]
    assert {"id", "star_balance", "coin_balance", "invite_code", "tier"} <= set(users)
    assert set(users["tier"]["enum"]) == {"bronze", "silver", "gold"}


def test_rpc_parameters_and_results_come_from_the_function_signatures(catalog) -> None:
    document = build_document(catalog)
    search = document["paths"]["/rest/v1/rpc/search_readings"]["post"]
    body = search["requestBody"]["content"]["application/json"]["schema"]
    assert list(body["properties"]) == ["query", "before_created_at", "before_id", "page_size"]
    assert body["required"] == ["query"]
    result = search["responses"]["200"]["content"]["application/json"]["schema"]
    assert result["type"] == "array"
    assert {"id", "question", "tarot_reading", "created_at"} <= set(result["items"]["properties"])
    exchange = document["paths"]["/rest/v1/rpc/exchange_coins"]["post"]
    exchange_body = exchange["requestBody"]["content"]["application/json"]["schema"]
    assert exchange_body["required"] == ["coins"]
    assert exchange_body["properties"]["coins"]["type"] == "integer"


def test_the_document_lists_every_error_code_with_both_messages(catalog) -> None:
    document = build_document(catalog)
    codes = error_catalog()
    assert document["x-error-codes"] == codes
    detail = document["components"]["schemas"]["ErrorDetail"]["properties"]["code"]
    assert detail["enum"] == list(codes)
    for path in _function_paths(document).values():
        for op in path.values():
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    named = [c.strip("`") for c in response["description"].split(": ")[1]
                             .split(", ")]
                    assert set(named) <= set(codes), (status, named)
            assert any(p["name"] == "Accept-Language" for p in op["parameters"])


def test_request_bodies_refuse_unknown_fields_and_errors_use_the_error_json(catalog) -> None:
    document = build_document(catalog)
    schemas = document["components"]["schemas"]
    assert schemas["CreateReadingRequest"]["additionalProperties"] is False
    assert schemas["ErrorBody"]["required"] == ["error", "request_id"]
    for path in _function_paths(document).values():
        for op in path.values():
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorBody"}


def test_security_schemes_name_each_caller(catalog) -> None:
    document = build_document(catalog)
    by_function = {op.function: op.security for op in operations()}
    assert by_function["stripe-webhook"] == "stripeSignature"
    assert by_function["job-consumer"] == "qstashSignature"
    assert by_function["session"] == "providerToken"
    assert by_function["create-reading"] == "accessToken"
    assert set(document["components"]["securitySchemes"]) == {*by_function.values(),
                                                              "supabaseApiKey"}


def test_check_reports_a_stale_document(tmp_path, catalog_db) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n")
    assert main(["--check", "--output", str(stale), "--database-url", catalog_db]) == 1


def test_function_url_server_serves_the_document_with_its_own_address(monkeypatch) -> None:
    import os

    saved = dict(os.environ)
    try:
        app = create_app(ROOT / "serverless.yml", {"SUPABASE_URL": "http://127.0.0.1:49999"})
        with ServerThread(app, name="function-urls") as server:
            served = httpx.get(server.url + "/openapi.json").json()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert served["servers"] == [{"url": server.url}]
    committed = json.loads(DOCUMENT.read_text("utf-8"))["paths"]
    assert set(served["paths"]) == set(committed)
    for path, item in served["paths"].items():
        if path.startswith("/rest/"):
            # The REST surface answers on this stack's Supabase URL, wherever it runs.
            assert item["servers"] == [{"url": "http://127.0.0.1:49999"}]
            assert {k: v for k, v in item.items() if k != "servers"} == \
                {k: v for k, v in committed[path].items() if k != "servers"}
        else:
            assert item == committed[path]


def test_the_docs_page_and_its_assets_are_served_locally() -> None:
    import os
    import re

    saved = dict(os.environ)
    try:
        app = create_app(ROOT / "serverless.yml", {})
        with ServerThread(app, name="function-urls") as server:
            page = httpx.get(server.url + "/docs")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assets = re.findall(r'(?:href|src)="([^"]+)"', page.text)
            assert assets and all(a.startswith("/docs/") for a in assets), assets
            for asset in assets:
                served = httpx.get(server.url + asset)
                assert served.status_code == 200, asset
                assert len(served.content) > 0
            init = httpx.get(server.url + "/docs/init.js").text
            assert '"/openapi.json"' in init
            bundle = httpx.get(server.url + "/docs/assets/swagger-ui-bundle.js")
            assert "SwaggerUIBundle" in bundle.text
            assert httpx.get(server.url + "/docs/assets/missing.js").status_code == 404
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert "//" not in "".join(a.removeprefix("/") for a in assets)  # nothing from elsewhere


def test_docs_api_names_every_rest_table_and_rpc(catalog) -> None:
    text = (ROOT / "docs" / "API.md").read_text("utf-8")
    for table in catalog.tables:
        assert f"`{table.name}`" in text, table.name
    for function in catalog.functions:
        assert f"`{function.name}`" in text, function.name
        for name, _, _ in function.parameters:
            assert f"`{name} " in text or f"`{name}`" in text, (function.name, name)


def test_the_document_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import validate

    validate(json.loads(DOCUMENT.read_text("utf-8")))
