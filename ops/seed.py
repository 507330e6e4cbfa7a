"""Load `supabase/seed.sql`, the demo users, into the local stack's database (`make seed`).

    python -m ops.seed                        the running local stack (.local/stack.json)
    python -m ops.seed --database-url URL     another database on this machine

Only on request and only locally: the database must be on a loopback address (then it may
already have users, for example the developer's own). Loaded any other way, seed.sql itself
refuses a database that has users. It runs in one transaction and ends by checking
`wallet_audit()`; a second run leaves everything as it is.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from ops.migrate import default_database_url

ROOT = Path(__file__).resolve().parent.parent
SEED_FILE = ROOT / "supabase" / "seed.sql"


class SeedError(Exception):
    """The seed cannot be loaded into that database."""


def _is_local(database_url: str) -> bool:
    host = urlsplit(database_url).hostname or ""
    if host in ("", "localhost") or host.startswith("/"):
        return True  # no host: a Unix socket on this machine
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_seed(database_url: str, seed_file: Path = SEED_FILE) -> list[str]:
    """Run seed.sql in one transaction; returns the notices it raised."""
    if not _is_local(database_url):
        raise SeedError("the demo data is for a database on this machine only "
                        f"(not {urlsplit(database_url).hostname})")
    notices: list[str] = []
    with psycopg.connect(database_url) as conn:
        conn.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary or ""))
        try:
            with conn.transaction():
                conn.execute("select pg_catalog.set_config('mimivibe.seed', 'local', true)")
                conn.execute(seed_file.read_text("utf-8").encode())
        except psycopg.Error as exc:
            raise SeedError(exc.diag.message_primary or str(exc)) from exc
    return notices


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.seed", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="default: $DATABASE_URL, else .local/stack.json")
    args = parser.parse_args(argv)
    try:
        notices = load_seed(args.database_url or default_database_url())
    except Exception as exc:  # MigrationError (no database) or SeedError
        print(f"seed: {exc}", file=sys.stderr)
        return 1
    for notice in notices:
        print(notice)
    print(f"loaded {SEED_FILE.relative_to(ROOT)}: sign in as demo-gold-1, demo-silver-1, "
          "demo-bronze-1, ... (see the file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
