"""The OpenAPI 3.1 document of the app's whole surface, generated, never retyped.

    python -m ops.openapi                        write openapi.json at the repository root
    python -m ops.openapi --check                exit 1 when the committed file differs
    ... --database-url postgresql://...          read the catalog of this migrated database
                                                 (default: a throwaway embedded PostgreSQL)

The function URLs come from the handlers' pydantic models: paths `/<function>[/<path>]`, as the
local stack serves them (`servers`; in AWS each function has its own URL and the same sub-path),
every error the error JSON of docs/API.md, whose `code` is one of the codes of shared/errors.py
(listed with their English and Thai messages under `x-error-codes`). The Supabase REST surface
(`/rest/v1/<table>` and `/rest/v1/rpc/<function>`, on the Supabase URL) comes from the catalog
of a migrated database: what the role `authenticated` is granted (ops/openapi_rest.py). CI
regenerates the document and compares it with the committed file (tests/ops/test_openapi.py),
checks that every function of serverless.yml has its paths, and runs schemathesis against the
local stack's function URLs with it. The local stack serves it at /openapi.json and an
interactive reference at /docs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from ops.openapi_rest import (
    LOCAL_SUPABASE_URL,
    Catalog,
    read_catalog,
    rest_document_parts,
    throwaway_database,
)
from shared.errors import error_catalog

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "openapi.json"
VERSION = "1.0.0"


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable snake_case code, the same in every language "
                                  "(x-error-codes lists them).", examples=["validation_error"])
    message: str = Field(description="A readable sentence in the language Accept-Language "
                                     "prefers: Thai (`th`) or English (the default).")
    details: dict[str, Any] | None = Field(description="Structured details, or null.")


class ErrorBody(BaseModel):
    """Every error of every function."""

    error: ErrorDetail
    request_id: str


class WebhookAck(BaseModel):
    received: bool
    duplicate: bool


@dataclass(frozen=True)
class Operation:
    function: str
    method: str
    path: str
    summary: str
    status: int
    response: type[BaseModel] | None
    request: type[BaseModel] | None = None
    body_required: bool = True
    security: str | None = "accessToken"
    errors: dict[int, list[str]] = field(default_factory=dict)
    headers: tuple[tuple[str, bool, str], ...] = ()
    path_params: tuple[str, ...] = ()
    raw_body: bool = False


def operations() -> list[Operation]:
    """The public surface of docs/API.md, one entry per function URL operation."""
    from shared.account import AccountExport, DeleteAccountRequest, DeleteAccountResponse
    from shared.consumer import ConsumeRequest, ConsumerReport
    from shared.invites import RedeemInviteRequest, RedeemInviteResponse
    from shared.payment_methods import SetupRequest, SetupResponse
    from shared.payments import PurchaseRequest, PurchaseResponse
    from shared.readings import CreateReadingRequest, CreateReadingResponse
    from shared.sessions import SessionRequest, SessionResponse

    idempotency = ("Idempotency-Key", False,
                   "1-255 printable ASCII characters; the same key and body replay the first response.")
    return [
        Operation("session", "post", "/session", "Exchange a provider token for an access token",
                  200, SessionResponse, SessionRequest, body_required=False,
                  security="providerToken",
                  errors={401: ["unauthorized"], 409: ["email_conflict"],
                          422: ["validation_error"], 429: ["rate_limited"]}),
        Operation("purchase", "post", "/purchase", "Create a PaymentIntent for a star package",
                  201, PurchaseResponse, PurchaseRequest,
                  errors={402: ["payment_failed"], 409: ["idempotency_key_reused"],
                          422: ["validation_error"], 429: ["rate_limited"],
                          502: ["payment_provider_unavailable"]},
                  headers=(idempotency,)),
        Operation("stripe-webhook", "post", "/stripe-webhook", "Stripe events (signed raw body)",
                  200, WebhookAck, security="stripeSignature", raw_body=True,
                  errors={400: ["invalid_signature", "invalid_payload"]}),
        Operation("redeem-invite", "post", "/redeem-invite", "Redeem an inviter's code",
                  200, RedeemInviteResponse, RedeemInviteRequest,
                  errors={404: ["invite_not_found"], 409: ["already_invited"],
                          422: ["validation_error", "self_invite", "invite_window_closed",
                                "invite_cycle"],
                          429: ["rate_limited"]}),
        Operation("create-reading", "post", "/create-reading",
                  "Charge stars and queue a reading, once per Idempotency-Key",
                  202, CreateReadingResponse, CreateReadingRequest,
                  errors={402: ["insufficient_stars"], 409: ["idempotency_key_reused"],
                          422: ["validation_error"],
                          429: ["rate_limited", "too_many_pending_readings"]},
                  headers=(("Idempotency-Key", True, idempotency[2]),)),
        Operation("payment-methods", "post", "/payment-methods/setup",
                  "Start saving a card (SetupIntent)", 201, SetupResponse, SetupRequest,
                  body_required=False,
                  errors={409: ["idempotency_key_reused"], 422: ["validation_error"],
                          429: ["rate_limited"], 502: ["payment_provider_unavailable"]},
                  headers=(idempotency,)),
        Operation("payment-methods", "delete", "/payment-methods/{id}",
                  "Remove a saved card", 204, None, path_params=("id",),
                  errors={404: ["not_found"], 429: ["rate_limited"],
                          502: ["payment_provider_unavailable"]}),
        Operation("account", "get", "/account/export",
                  "Everything stored about the signed-in user", 200, AccountExport,
                  errors={429: ["rate_limited"]}),
        Operation("account", "delete", "/account",
                  "Erase the account (personal data erased, financial records kept anonymised)",
                  202, DeleteAccountResponse, DeleteAccountRequest,
                  errors={404: ["not_found"], 422: ["validation_error"], 429: ["rate_limited"]}),
        Operation("job-consumer", "post", "/job-consumer",
                  "Drain the reading queue (QStash, signed)", 200, ConsumerReport, ConsumeRequest,
                  body_required=False, security="qstashSignature",
                  errors={401: ["invalid_signature"], 422: ["validation_error"],
                          502: ["payment_provider_unavailable"]}),
    ]


SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "accessToken": {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "The access token `session` returns (a Supabase JWT, role authenticated).",
    },
    "providerToken": {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "An identity provider's token (Clerk, Auth0, Firebase or custom).",
    },
    "stripeSignature": {
        "type": "apiKey", "in": "header", "name": "Stripe-Signature",
        "description": "Stripe's webhook signature over the raw body (300 s tolerance).",
    },
    "qstashSignature": {
        "type": "apiKey", "in": "header", "name": "Upstash-Signature",
        "description": "QStash's signed JWT (current or next signing key, URL claim).",
    },
    "supabaseApiKey": {
        "type": "apiKey", "in": "header", "name": "apikey",
        "description": "The project's anon key (Supabase REST), sent with the access token.",
    },
}

# Responses any operation can give, whatever it does.
COMMON_ERRORS: dict[int, list[str]] = {
    405: ["method_not_allowed"], 413: ["payload_too_large"], 500: ["internal_error"],
    503: ["service_unavailable"],
}
REASONS = {400: "Bad request", 401: "Unauthorized", 402: "Payment required", 404: "Not found",
           405: "Method not allowed", 409: "Conflict", 413: "Payload too large",
           422: "Validation error", 429: "Too many requests", 500: "Internal error",
           502: "Upstream unavailable", 503: "Service unavailable"}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _error_response(codes: list[str], status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": f"{REASONS.get(status, 'Error')}: " + ", ".join(f"`{c}`" for c in codes),
        "content": {"application/json": {"schema": _ref(ErrorBody)}},
    }
    if status in (429, 503):
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                               "description": "Seconds to wait."}}
    return response


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('-', '_')}"
                       .replace("{", "").replace("}", ""),
        "summary": op.summary,
        "tags": [op.function],
        "x-function": op.function,
    }
    parameters = [{"name": name, "in": "header", "required": required, "description": text,
                   "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                              "pattern": "^[\\x20-\\x7e]{1,255}$"}}
                  for name, required, text in op.headers]
    parameters += [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                   for p in op.path_params]
    if parameters:
        out["parameters"] = parameters
    if op.request is not None:
        out["requestBody"] = {"required": op.body_required,
                              "content": {"application/json": {"schema": _ref(op.request)}}}
    elif op.raw_body:
        out["requestBody"] = {"required": True, "description": "Stripe's event, verified on the raw bytes.",
                              "content": {"application/json": {"schema": {"type": "object"}}}}
    success: dict[str, Any] = {"description": "Success"}
    if op.response is not None:
        success["content"] = {"application/json": {"schema": _ref(op.response)}}
    responses: dict[str, Any] = {str(op.status): success}
    errors = {**COMMON_ERRORS, **op.errors}
    if op.security in ("accessToken", "providerToken"):
        errors.setdefault(401, ["unauthorized"])
    for status in sorted(errors):
        responses[str(status)] = _error_response(errors[status], status)
    out["responses"] = responses
    out["security"] = [{op.security: []}] if op.security else []
    return out


def _language_parameter() -> dict[str, Any]:
    return {"name": "Accept-Language", "in": "header", "required": False,
            "schema": {"type": "string"}, "example": "th-TH,th;q=0.9,en;q=0.8",
            "description": "`th` (or a list that prefers it, q-values respected): error "
                           "messages in Thai; otherwise English. `code` never changes."}


def _description(codes: dict[str, dict[str, Any]]) -> str:
    rows = "\n".join(f"| `{code}` | {', '.join(map(str, e['status']))} | {e['en']} | {e['th']} |"
                     for code, e in codes.items())
    return (
        "The public contract (docs/API.md). Each function is its own Lambda function URL; "
        "locally they share one host under `/<function>`. The app reads its own data from "
        "Supabase REST (`/rest/v1`, under row-level security) with the access token `session` "
        "returns.\n\nErrors: `{\"error\": {\"code\", \"message\", \"details\"}, "
        "\"request_id\"}`. `message` is Thai when `Accept-Language` prefers `th`, else "
        "English; `code` never changes (also listed as `x-error-codes`).\n\n"
        "| code | status | English | Thai |\n|---|---|---|---|\n" + rows
    )


def build_document(catalog: Catalog, server_url: str = "http://127.0.0.1:3000",
                   supabase_url: str = LOCAL_SUPABASE_URL) -> dict[str, Any]:
    ops = operations()
    models: set[type[BaseModel]] = {ErrorBody}
    for op in ops:
        models.update(m for m in (op.request, op.response) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, schema = models_json_schema(
        [(m, "validation" if m in {op.request for op in ops} else "serialization")
         for m in ordered],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        operation = _operation(op)
        operation.setdefault("parameters", []).append(_language_parameter())
        paths.setdefault(op.path, {})[op.method] = operation
    codes = error_catalog()
    schema["$defs"]["ErrorDetail"]["properties"]["code"]["enum"] = list(codes)
    rest_paths, rest_schemas = rest_document_parts(catalog, supabase_url)
    paths.update(rest_paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MimiVibe API",
            "version": VERSION,
            "description": _description(codes),
        },
        "servers": [{"url": server_url, "description": "local stack (make dev)"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted({**schema.get("$defs", {}), **rest_schemas}.items())),
            "securitySchemes": SECURITY_SCHEMES,
        },
        "x-error-codes": codes,
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.openapi", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file")
    parser.add_argument("--output", type=Path, default=DOCUMENT)
    parser.add_argument("--database-url",
                        help="a migrated database whose catalog describes the REST surface "
                             "(default: a throwaway embedded PostgreSQL)")
    args = parser.parse_args(argv)
    if args.database_url:
        catalog = read_catalog(args.database_url)
    else:
        with throwaway_database() as url:
            catalog = read_catalog(url)
    text = render(build_document(catalog))
    if args.check:
        current = args.output.read_text("utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python -m ops.openapi", file=sys.stderr)
            return 1
        print(f"{args.output} is current")
        return 0
    args.output.write_text(text, "utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
