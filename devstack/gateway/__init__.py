"""A PostgREST-compatible gateway (`/rest/v1`) over a real PostgreSQL, for the local stack.

Follows the project's PostgREST contract (v13 semantics): JWT -> role and claims per
transaction, selects with resource embedding, filters, ranges and counts, singular, CSV and
nulls-stripped responses, writes with Prefer, RPC, the OpenAPI root, PostgREST's error body and
SQLSTATE -> status table. What it does and does not do: docs/gateway.md.
"""

from devstack.gateway.app import create_app
from devstack.gateway.settings import GatewaySettings

__all__ = ["GatewaySettings", "create_app"]
