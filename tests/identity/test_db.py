"""shared.db: service and per-user PostgREST clients over the REST gateway, and error mapping."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from postgrest import CountMethod
from postgrest.exceptions import APIError
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from devstack.ports import free_port
from devstack.serve import ServerThread
from shared import bootstrap
from shared.access_tokens import AuthenticatedUser, account_erased, mint_access_token
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

# An unavailable database must cost a request about a round trip, not a client's retry backoff.
PROMPT_SECONDS = 1.0


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


def _user() -> AuthenticatedUser:
    user_id = uuid.uuid4()
    token = mint_access_token(user_id, secret=JWT_SECRET)
    return AuthenticatedUser(user_id=user_id, access_token=token.token,
                             expires_at=token.expires_at, claims={})


@pytest.mark.parametrize("call", ["rpc", "table read", "count"])
def test_unreachable_rest_api_is_service_unavailable_at_once(call):
    db = Database(f"http://127.0.0.1:{free_port()}", anon_key=SecretStr("a"),
                  service_role_key=SecretStr("s"), timeout_seconds=2)
    queries = {
        "rpc": lambda: db.service.rpc("anything", {}),
        "table read": lambda: db.service.table("users").select("id"),
        "count": lambda: db.service.table("users").select("id", count=CountMethod.exact, head=True),
    }
    try:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            execute(queries[call]())
        assert time.monotonic() - started < PROMPT_SECONDS
    finally:
        db.close()


class DatabaseDown:
    """A REST API whose database is down: every call answers as PostgREST then does."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    def app(self) -> Starlette:
        async def answer(request: Request) -> JSONResponse:
            self.requests.append(f"{request.method} {request.url.path}")
            return JSONResponse(
                {"code": "PGRST001", "details": "connection refused", "hint": None,
                 "message": "Database client error. Retrying the connection."}, status_code=503)
        return Starlette(routes=[Route("/{path:path}", answer,
                                       methods=["GET", "HEAD", "POST", "PATCH", "DELETE"])])


@pytest.fixture
def database_down() -> Iterator[tuple[DatabaseDown, Database]]:
    down = DatabaseDown()
    with ServerThread(down.app(), name="database-down") as server:
        db = Database(server.url, anon_key=SecretStr("a"), service_role_key=SecretStr("s"))
        try:
            yield down, db
        finally:
            db.close()


def test_a_table_read_the_database_cannot_serve_is_sent_once_and_unavailable_at_once(
        database_down):
    down, db = database_down
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        execute(db.for_user(_user().access_token).table("users").select("erased_at"))
    assert time.monotonic() - started < PROMPT_SECONDS
    assert down.requests == ["GET /rest/v1/users"]


def test_erased_check_without_the_database_fails_closed_at_once(database_down):
    # Unknown is not "not erased": the caller gets 503, never the account's permissions.
    down, db = database_down
    bootstrap.override(database=db)
    try:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            account_erased(_user())
        assert time.monotonic() - started < PROMPT_SECONDS
    finally:
        bootstrap.reset()
    assert down.requests == ["GET /rest/v1/users"]


@pytest.mark.parametrize(("code", "expected"), [
    ("MV001", InsufficientStars), ("PGRST116", NotFound), ("PGRST303", Unauthorized),
    ("PGRST003", ServiceUnavailable), ("08006", ServiceUnavailable),
    ("57014", ServiceUnavailable), ("503", ServiceUnavailable), ("42501", AppError),
])
def test_postgrest_error_codes_map_to_app_errors(code, expected):
    error = translate_error(APIError({"code": code, "message": "m", "details": None}))
    assert type(error) is expected
