"""The local stack: PostgreSQL, Redis and the HTTP stand-ins the functions meet in production.

`python -m devstack up` (or `make dev`) runs it in the foreground; tests use it in-process:

    with LocalStack(root=tmp_path, preferred_ports=False) as stack:
        stack.info["urls"]["functions"]

Everything lives under `root` (default `.local/`): the PostgreSQL data folder, Redis files, the
local secrets (generated once, `secrets.json`) and `stack.json`, the machine-readable description
of the running stack (URLs, keys, database and Redis URLs) that tools and tests read. The HTTP
services are the entries of `devstack.stack_services.SERVICES`; adding a stand-in is one entry.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from devstack.database import apply_bootstrap, create_database
from devstack.ports import free_port
from devstack.serve import ServerThread
from devstack.stack_services import SERVICES, Service, StackSecrets

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = PROJECT_ROOT / ".local"
POSTGRES_PORT = 54322
DATABASE_NAME = "mimivibe"

logger = logging.getLogger("devstack.stack")


def _with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user)}:{quote(password, safe='')}@{host}" + (
        f":{parts.port}" if parts.port else ""
    )
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class LocalStack:
    def __init__(
        self,
        root: Path = DEFAULT_ROOT,
        *,
        database_url: str | None = None,
        redis_url: str | None = None,
        preferred_ports: bool = True,
        serverless_yml: Path = PROJECT_ROOT / "serverless.yml",
        services: Sequence[Service] = SERVICES,
        migrate: bool = True,
        environment: dict[str, str] | None = None,
    ) -> None:
        """`database_url` / `redis_url` (default: $DATABASE_URL / $REDIS_URL) select existing
        servers instead of the embedded ones. `preferred_ports=False` takes free ports only (tests).
        `environment` adds to (and overrides) what the functions see."""
        self.root = Path(root).resolve()
        self.database_url_given = database_url or os.environ.get("DATABASE_URL") or None
        self.redis_url_given = redis_url or os.environ.get("REDIS_URL") or None
        self.preferred_ports = preferred_ports
        self.serverless_yml = Path(serverless_yml)
        self.services = [s for s in services if s.wanted()]
        self.migrate = migrate
        self.extra_environment = dict(environment or {})
        self.secrets = StackSecrets(self.root / "secrets.json")
        self.ports: dict[str, int] = {}
        self.database_url = ""
        self.redis_url = ""
        self.environment: dict[str, str] = {}
        self.info: dict[str, Any] = {}
        self._postgres: Any = None
        self._redis: Any = None
        self._servers: list[ServerThread] = []
        self._cleanups: list[Callable[[], None]] = []
        self._restore: Callable[[], None] | None = None

    # -- addresses ------------------------------------------------------------------------
    def port(self, preferred: int) -> int:
        return free_port(preferred if self.preferred_ports else None)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def stack_file(self) -> Path:
        return self.root / "stack.json"

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> LocalStack:
        self.root.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            self._start_database()
            self._start_redis()
            for service in self.services:
                self.ports[service.name] = self.port(service.port)
            for attempt in range(3):
                if self._start_services() or attempt == 2:
                    break
                # A port was taken between choosing and binding it and its server chose
                # another: every URL the services were given must be told again.
                logger.info("a port was taken while starting; starting the services again")
                for server in reversed(self._servers):
                    server.stop()
                self._servers.clear()
            for service in self.services:
                logger.info("%-18s %s", service.name, service.display_url(self))
            for service in self.services:
                service.after_start(self)
            self.info = self._describe()
            self._write_stack_file()
        except BaseException:
            self.stop()
            raise
        logger.info("stack ready in %.1f s; %s", time.monotonic() - started, self.stack_file)
        return self

    def _start_services(self) -> bool:
        """Start the HTTP services on `self.ports`; False when one had to take another port
        (then `self.ports` holds the ports actually bound)."""
        self.environment = {}
        for service in self.services:
            self.environment.update(service.environment(self))
        self.environment.update(self.extra_environment)
        if self._restore is None:
            self._restore_environment_on_stop()
        moved = False
        for service in self.services:
            server = ServerThread(service.app(self), self.ports[service.name], name=service.name)
            server.start()
            self._servers.append(server)
            if server.port != self.ports[service.name]:
                self.ports[service.name] = server.port
                moved = True
        return not moved

    @property
    def postgres(self) -> Any:
        """The embedded PostgreSQL cluster (None with DATABASE_URL): fault tests stop it."""
        return self._postgres

    @property
    def redis(self) -> Any:
        """The Redis server (fault tests stop, kill and restart it)."""
        return self._redis

    def stop(self) -> None:
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()
        for cleanup in reversed(self._cleanups):
            cleanup()
        self._cleanups.clear()
        if self.info and self.stack_file.exists():
            self.stack_file.unlink()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- pieces ---------------------------------------------------------------------------
    def _start_database(self) -> None:
        if self.database_url_given:
            self.database_url = self.database_url_given
        else:
            from devstack.postgres import PostgresCluster

            cluster = PostgresCluster(self.root / "postgres", port=self.port(POSTGRES_PORT))
            if cluster.initialised() and cluster.running():
                cluster.stop()  # left over from a run that did not stop cleanly
            cluster.start()
            self._postgres = cluster
            self._cleanups.append(cluster.stop)
            self.database_url = create_database(cluster.url, DATABASE_NAME)
            logger.info("%-18s %s", "postgres", self.database_url)
        apply_bootstrap(self.database_url)
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("alter role authenticator with login password {}").format(
                sql.Literal(self.secrets.get("authenticator_password"))))
        if self.migrate:
            from ops.migrate import MigrationError, migrate_up

            try:
                applied = migrate_up(self.database_url)
            except MigrationError as exc:
                if self._postgres is None:
                    raise
                # Only the embedded database is ours to throw away.
                raise MigrationError(f"{exc}. The local database in {self._postgres.data_dir} "
                                     "is disposable: delete that folder to start over.") from exc
            logger.info("%-18s %d migration(s) applied", "migrations", len(applied))

    def _restore_environment_on_stop(self) -> None:
        """The function-URL server exports the functions' environment into this process;
        an in-process stack (tests) gets the previous values back when it stops."""
        previous = {name: os.environ.get(name) for name in self.environment}

        def restore() -> None:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

        self._restore = restore
        self._cleanups.append(restore)

    @property
    def authenticator_url(self) -> str:
        """What PostgREST logs in as: `authenticator`, switching role per request."""
        return _with_user(self.database_url, "authenticator",
                          self.secrets.get("authenticator_password"))

    def _start_redis(self) -> None:
        from devstack.redis_server import RedisServer

        server = RedisServer(self.root / "redis", url=self.redis_url_given,
                             persistent=self.root == DEFAULT_ROOT)
        server.start()
        self._redis = server
        self._cleanups.append(server.stop)
        self.redis_url = server.url
        logger.info("%-18s %s", "redis", self.redis_url)

    def _describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "pid": os.getpid(),
            "started_at": int(time.time()),
            "urls": {s.name: self.url(s.name) for s in self.services},
            "anon_key": self.secrets.anon_key,
            "service_role_key": self.secrets.service_role_key,
            "jwt_secret": self.secrets.get("jwt_secret"),
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "environment": dict(self.environment),
        }
        if "supabase" in self.ports:
            info["urls"]["rest"] = self.url("supabase") + "/rest/v1"
        for service in self.services:
            section = service.describe(self)
            if section:
                info[service.name] = section
        return info

    def _write_stack_file(self) -> None:
        # Holds local secrets: readable by the owner only.
        tmp = self.stack_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info, indent=2) + "\n", encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(self.stack_file)


def read_stack_file(root: Path = DEFAULT_ROOT) -> dict[str, Any] | None:
    """The description of a stack running from `root`, or None when none is (or it died)."""
    path = Path(root) / "stack.json"
    try:
        info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info
