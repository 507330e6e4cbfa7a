"""A PostgREST-compatible gateway (`/rest/v1`) over a real PostgreSQL, for the local stack.

Follows the project's PostgREST contract (v13 semantics): JWT -> role and claims per
transaction, flat selects, filters, ranges and counts, singular responses, writes with Prefer,
RPC, PostgREST's error body and SQLSTATE -> status table.
"""

from devstack.gateway.app import create_app
from devstack.gateway.settings import GatewaySettings

__all__ = ["GatewaySettings", "create_app"]
