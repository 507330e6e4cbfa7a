"""Schemathesis against the local stack with the served OpenAPI document: for generated requests
(valid and invalid) to every operation of every function URL, no 5xx and every status, content
type and body as documented; invalid requests are refused with a 4xx.

Each caller is who it is in production: the user functions get a signed-in user's access token
(with stars, so readings are created), `session` a provider token, and the Stripe webhook and
the job consumer get each generated body signed the way Stripe and QStash sign it, so the fuzz
reaches their processing and not only their signature checks.

Bounded: a few examples per operation and mode; the user's rate limit is raised so the checks
exercise the functions rather than the limiter."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from devstack.qstash_standin.signing import sign_delivery
from devstack.stripe_standin import signature_header
from tests.db.conftest import connect, credit
from tests.support.local_stack import running_local_stack

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]
MAX_EXAMPLES = 10
# Operations whose documented success the fuzz must reach at least once (the others need
# state a random request cannot name: someone's invite code, a saved card, a Stripe event).
MUST_SUCCEED = {"POST /session", "POST /purchase", "POST /create-reading",
                "POST /payment-methods/setup", "POST /job-consumer"}


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory, database_factory):
    database_url = database_factory(migrate=False, bootstrap=False)
    environment = {"RATE_LIMIT_REQUESTS": "100000", "MAX_PENDING_READINGS": "1000"}
    with running_local_stack(tmp_path_factory.mktemp("fuzz-stack"), database_url,
                             environment) as (stack, _):
        yield stack


@pytest.fixture(scope="module")
def tokens(local_stack) -> dict[str, str]:
    """A provider token and the access token `session` returned for it (a user with stars)."""
    subject = f"fuzz-{uuid.uuid4().hex[:8]}"
    id_token = httpx.post(local_stack.info["identity"]["token_url"], json={
        "sub": subject, "email": f"{subject}@example.com", "email_verified": True,
    }).json()["id_token"]
    session = httpx.post(local_stack.info["functions"]["session"],
                         headers={"Authorization": f"Bearer {id_token}"}, json={})
    assert session.status_code == 200, session.text
    with connect(local_stack.info["database_url"]) as conn:
        credit(conn, uuid.UUID(session.json()["user"]["id"]), "STAR", 500)
    return {"providerToken": id_token, "accessToken": session.json()["access_token"]}


def headers_mutated(case: Any) -> bool:
    """Whether a negative case made its headers invalid (for example, dropped a signature)."""
    component = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    return component is not None and component.mode == GenerationMode.NEGATIVE


def utf8(body: bytes | None) -> bool:
    try:
        (body or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Caller:
    """Sends a generated case as its real caller would, signing the exact bytes sent."""

    def __init__(self, stack: Any, tokens: dict[str, str]) -> None:
        self.environment = stack.info["environment"]
        self.consumer_url = stack.info["functions"]["job-consumer"]
        self.tokens = tokens
        self.http = requests.Session()
        self.token_url = stack.info["identity"]["token_url"]
        self.session_url = stack.info["functions"]["session"]

    def fresh_access_token(self) -> str:
        sub = f"fuzz-{uuid.uuid4().hex}"
        id_token = httpx.post(self.token_url, json={"sub": sub}).json()["id_token"]
        session = httpx.post(self.session_url, headers={"Authorization": f"Bearer {id_token}"},
                             json={})
        assert session.status_code == 200, session.text
        return str(session.json()["access_token"])

    def send(self, case: Any, scheme: str | None) -> tuple[requests.Response, dict[str, Any]]:
        kwargs = case.as_transport_kwargs()
        headers = kwargs.setdefault("headers", {})
        if "json" in kwargs:
            kwargs["data"] = json.dumps(kwargs.pop("json")).encode()
            headers["Content-Type"] = "application/json"
        body = kwargs.get("data") or b""
        if isinstance(body, str):
            body = kwargs["data"] = body.encode()
        assert isinstance(body, bytes), f"unexpected body {body!r}"
        if headers_mutated(case):
            pass  # the credential header may be the invalid part: send it as generated
        elif case.operation.label == "DELETE /account":
            # Each deletion erases an account of its own; the shared user stays for the rest.
            headers["Authorization"] = f"Bearer {self.fresh_access_token()}"
        elif scheme in ("accessToken", "providerToken"):
            headers["Authorization"] = f"Bearer {self.tokens[scheme]}"
        elif scheme == "stripeSignature":
            headers["Stripe-Signature"] = signature_header(
                body, self.environment["STRIPE_WEBHOOK_SECRET"])
        elif scheme == "qstashSignature":
            headers["Upstash-Signature"] = sign_delivery(
                self.environment["QSTASH_CURRENT_SIGNING_KEY"], url=self.consumer_url, body=body)
        response = self.http.request(**kwargs, timeout=60)
        return response, kwargs


def exercise(operation, mode: GenerationMode, caller: Caller, seen: dict[str, set[int]]) -> None:
    security = operation.definition.raw.get("security") or [{}]
    scheme = next(iter(security[0]), None)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        response, sent = caller.send(case, scheme)
        seen[operation.label].add(response.status_code)
        if not headers_mutated(case) and utf8(sent.get("data")):
            # Credentials were valid: a refusal must be about the request, not the caller.
            # (Not for bodies that are not UTF-8: the QStash receiver verifies text only, so
            # the consumer refuses those as unsigned, which the document allows.)
            assert response.status_code != 401, response.text
            assert "invalid_signature" not in response.text, response.text
        case.validate_response(response, checks=CHECKS, headers=sent["headers"],
                               transport_kwargs=sent)

    run()


def test_function_urls_conform_to_the_openapi_document(local_stack, tokens) -> None:
    # Loaded from the URL the stack serves it at, so the served document is what is tested.
    # (Driven through Hypothesis directly: schemathesis' pytest plugin lags pytest 9.)
    schema = schemathesis.openapi.from_url(local_stack.info["urls"]["functions"] + "/openapi.json")
    # The function URLs; the REST paths of the same document answer on the Supabase URL (the
    # gateway's contract tests cover them).
    documented = {f"{method.upper()} {path}" for path, item in schema.raw_schema["paths"].items()
                  for method in item if not path.startswith("/rest/")}
    caller = Caller(local_stack, tokens)
    seen: dict[str, set[int]] = defaultdict(set)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        if operation.path.startswith("/rest/"):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                exercise(operation, mode, caller, seen)
            except Exception as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")

    assert not failures, "\n\n".join(failures)
    assert set(seen) == documented and len(documented) == 10
    for label in MUST_SUCCEED:
        assert any(200 <= status < 300 for status in seen[label]), (label, seen[label])
