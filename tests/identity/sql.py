"""Small typed helpers for direct SQL in the identity tests."""

from __future__ import annotations

from typing import Any

import psycopg


def first_row(conn: psycopg.Connection, query: Any, params: Any = None) -> tuple[Any, ...]:
    row = conn.execute(query, params).fetchone()
    assert row is not None, "the query returned no row"
    return tuple(row)


def scalar(conn: psycopg.Connection, query: Any, params: Any = None) -> Any:
    return first_row(conn, query, params)[0]
