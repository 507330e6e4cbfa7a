"""shared.db: service and per-user PostgREST clients over the REST gateway, and error mapping."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from postgrest.exceptions import APIError
from pydantic import SecretStr

from devstack.ports import free_port
from shared.access_tokens import mint_access_token
from shared.db import Database, execute, translate_error
from shared.errors import (
    AppError,
    EmailConflict,
    InsufficientStars,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)
from tests.identity.stack import JWT_SECRET, Stack, api_key


@pytest.fixture(scope="module")
def database(stack: Stack):
    db = Database(stack.rest_url.removesuffix("/rest/v1"), anon_key=SecretStr(api_key("anon")),
                  service_role_key=SecretStr(api_key("service_role")))
    yield db
    db.close()


def _upsert(db: Database, provider: str, email: str, verified: bool):
    params: dict[str, Any] = {
        "p_provider": provider, "p_external_id": uuid.uuid4().hex, "p_email": email,
        "p_email_verified": verified,
    }
    return execute(db.service.rpc("upsert_user_from_identity", params))


def test_service_client_calls_service_only_functions(database):
    result = _upsert(database, "auth0", f"{uuid.uuid4().hex}@example.test", True)
    assert result.data["created"] is True
    assert uuid.UUID(result.data["user"]["id"])


def test_user_client_sees_only_its_own_user(database):
    mine = _upsert(database, "custom", f"{uuid.uuid4().hex}@example.test", True).data["user"]
    _upsert(database, "custom", f"{uuid.uuid4().hex}@example.test", True)
    token = mint_access_token(mine["id"], secret=JWT_SECRET).token

    rows = execute(database.for_user(token).table("users").select("id")).data

    assert rows == [{"id": mine["id"]}]


def test_project_sqlstate_maps_to_its_error_with_the_sql_detail(database):
    email = f"{uuid.uuid4().hex}@example.test"
    _upsert(database, "clerk", email, True)
    with pytest.raises(EmailConflict) as caught:
        _upsert(database, "firebase", email, False)
    assert caught.value.status == 409
    assert "not verified" in caught.value.message


def test_forged_user_token_is_unauthorized(database):
    forged = mint_access_token(uuid.uuid4(), secret="another-secret-of-sufficient-length!").token
    with pytest.raises(Unauthorized):
        execute(database.for_user(forged).table("users").select("id"))


def test_unreachable_rest_api_is_service_unavailable():
    db = Database(f"http://127.0.0.1:{free_port()}", anon_key=SecretStr("a"),
                  service_role_key=SecretStr("s"), timeout_seconds=2)
    try:
        with pytest.raises(ServiceUnavailable):
            execute(db.service.rpc("anything", {}))
    finally:
        db.close()


@pytest.mark.parametrize(("code", "expected"), [
    ("MV001", InsufficientStars), ("PGRST116", NotFound), ("PGRST303", Unauthorized),
    ("PGRST003", ServiceUnavailable), ("08006", ServiceUnavailable),
    ("57014", ServiceUnavailable), ("503", ServiceUnavailable), ("42501", AppError),
])
def test_postgrest_error_codes_map_to_app_errors(code, expected):
    error = translate_error(APIError({"code": code, "message": "m", "details": None}))
    assert type(error) is expected
