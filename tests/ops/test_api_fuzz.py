"""Schemathesis against the local stack with the served OpenAPI document: for generated requests
(valid and invalid) to every function URL, no 5xx and every response matches the document.

Bounded: a few examples per operation, one signed-in user whose rate limit is raised so the
checks exercise the functions rather than the limiter."""

from __future__ import annotations

import uuid

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devstack.stack import LocalStack

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
MAX_EXAMPLES = 12


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory, database_factory):
    database_url = database_factory(migrate=False, bootstrap=False)
    with LocalStack(root=tmp_path_factory.mktemp("fuzz-stack"), database_url=database_url,
                    redis_url="", preferred_ports=False,
                    environment={"RATE_LIMIT_REQUESTS": "100000"}) as stack:
        yield stack


@pytest.fixture(scope="module")
def access_token(local_stack) -> str:
    identity = local_stack.info["identity"]
    subject = f"fuzz-{uuid.uuid4().hex[:8]}"
    id_token = httpx.post(identity["token_url"], json={
        "sub": subject, "email": f"{subject}@example.com", "email_verified": True,
    }).json()["id_token"]
    session = httpx.post(local_stack.info["functions"]["session"],
                         headers={"Authorization": f"Bearer {id_token}"}, json={})
    assert session.status_code == 200, session.text
    return str(session.json()["access_token"])


def exercise(operation, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

    run()


def test_function_urls_conform_to_the_openapi_document(local_stack, access_token) -> None:
    # Loaded from the URL the stack serves it at, so the served document is what is tested.
    # (Driven through Hypothesis directly: schemathesis' pytest plugin lags pytest 9.)
    schema = schemathesis.openapi.from_url(local_stack.info["urls"]["functions"] + "/openapi.json")
    failures: list[str] = []
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        headers = {}
        if operation.definition.raw.get("security") == [{"accessToken": []}]:
            headers["Authorization"] = f"Bearer {access_token}"
        try:
            exercise(operation, headers)
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
        tested.append(operation.label)
    assert len(tested) == 8
    assert not failures, "\n\n".join(failures)
