"""Database helpers for the local stack and the tests: create, drop, bootstrap."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

BOOTSTRAP_SQL = Path(__file__).parent / "sql" / "bootstrap.sql"


def with_database(url: str, database: str) -> str:
    """Return `url` pointing at another database of the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def create_database(server_url: str, name: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("create database {} template template0 encoding 'UTF8'").format(
                    sql.Identifier(name)
                )
            )
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def apply_bootstrap(url: str) -> None:
    """Give a plain PostgreSQL database the roles, schemas and auth functions Supabase has."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BOOTSTRAP_SQL.read_text())
