"""Session fixtures shared by every test: a real PostgreSQL server and fresh databases on it.

`DATABASE_URL` selects an existing server (its user must be able to create databases);
otherwise the session starts a throwaway cluster from the embedded PostgreSQL (18) or, with
`MIMIVIBE_PG_BIN=/usr/lib/postgresql/15/bin`, from another installation.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.database import apply_bootstrap, create_database, drop_database, with_database
from devstack.postgres import PostgresCluster
from tests.support.packaging import packaged, template

__all__ = ["packaged", "template"]  # `make package` once per session (tests/support/packaging.py)

DatabaseFactory = Callable[..., str]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Superuser URL of the PostgreSQL server the tests use."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield with_database(external, "postgres")
        return
    bin_dir = os.environ.get("MIMIVIBE_PG_BIN")
    root = Path(tempfile.mkdtemp(prefix="mimivibe-pg-"))
    cluster = (
        PostgresCluster(root / "data", bin_dir=Path(bin_dir))
        if bin_dir
        else PostgresCluster(root / "data")
    )
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def database_factory(pg_server: str) -> Iterator[DatabaseFactory]:
    """Create a fresh, bootstrapped database; with `migrate=True` also apply every migration."""
    created: list[str] = []

    def make(*, migrate: bool = True, bootstrap: bool = True) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        url = create_database(pg_server, name)
        created.append(name)
        if bootstrap:
            apply_bootstrap(url)
        if migrate:
            from ops.migrate import migrate_up

            migrate_up(url)
        return url

    yield make
    for name in created:
        drop_database(pg_server, name)


@pytest.fixture(scope="session")
def migrated_db(database_factory: DatabaseFactory) -> str:
    """One migrated database shared by the tests of a session (tests create their own users)."""
    return database_factory(migrate=True)
