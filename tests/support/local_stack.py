"""The whole local stack of devstack/stack.py (as `python -m devstack` runs it) inside a test
module, on a database of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

from devstack.journey import Journey
from devstack.stack import LocalStack
from tests.support.stack import reset_containers


@contextmanager
def running_local_stack(root: Path, database_url: str, environment: dict[str, str] | None = None
                        ) -> Iterator[tuple[LocalStack, httpx.Client]]:
    """The stack on an empty database (it bootstraps and migrates it) and a client for it."""
    reset_containers()
    with LocalStack(root=root, database_url=database_url, redis_url="", preferred_ports=False,
                    environment=environment) as stack:
        try:
            with httpx.Client(timeout=30) as client:
                yield stack, client
        finally:
            reset_containers()


def assert_wallets_consistent(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert conn.execute("select * from public.wallet_audit()").fetchall() == []


@contextmanager
def journey_on_local_stack(root: Path, database_url: str) -> Iterator[Journey]:
    """devstack/journey.py's steps against a fresh stack; every wallet still adds up after."""
    with running_local_stack(root, database_url) as (stack, client):
        yield Journey(stack.info, client)
        assert_wallets_consistent(stack.database_url)
