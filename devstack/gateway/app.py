"""The gateway as a servable app: `ServerThread(create_app(settings))` in tests and the stack,
one process per CPU in the benchmark."""

from __future__ import annotations

from devstack.gateway.server import GatewayServer
from devstack.gateway.settings import GatewaySettings


def create_app(settings: GatewaySettings) -> GatewayServer:
    return GatewayServer(settings)
