"""Gateway contract: text/csv and nulls=stripped responses, Prefer: timezone, and bulk inserts
with missing=default over identity, generated and defaulted columns."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.devstack.conftest import (
    authorized_client,
    database_with,
    gateway_serving,
    mint,
)

MEDIA_SQL = """
create table public.entries (
  id bigint generated always as identity primary key,
  label text not null,
  qty int not null default 1,
  total int generated always as (qty * 10) stored,
  note text,
  at timestamptz not null default '2026-01-01T00:00:00Z'
);
insert into public.entries (label, qty, note) values ('plain', 2, null), ('a,b "q"', 3, 'x');
"""


@pytest.fixture(scope="module")
def media_db(database_factory: Any) -> str:
    return database_with(database_factory, MEDIA_SQL)


@pytest.fixture(scope="module")
def media_url(media_db: str) -> Iterator[str]:
    with gateway_serving(media_db, "gateway-media") as url:
        yield url


@pytest.fixture()
def api(media_url: str) -> Iterator[httpx.Client]:
    with authorized_client(media_url) as client:
        yield client


def test_csv_has_a_header_line_and_record_text_rows(api: httpx.Client) -> None:
    r = api.get("/entries", params={"select": "label,qty,note", "id": "lte.2", "order": "id"},
                headers={"Accept": "text/csv"})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.text == 'label,qty,note\nplain,2,\n"a,b ""q""",3,x'
    empty = api.get("/entries", params={"id": "eq.0"}, headers={"Accept": "text/csv"})
    assert empty.text == "\n"


def test_nulls_stripped_arrays_and_objects(api: httpx.Client) -> None:
    accept = "application/vnd.pgrst.array+json;nulls=stripped"
    r = api.get("/entries", params={"select": "label,note", "id": "lte.2", "order": "id"},
                headers={"Accept": accept})
    assert r.json() == [{"label": "plain"}, {"label": 'a,b "q"', "note": "x"}]
    assert r.headers["Content-Type"] == ("application/vnd.pgrst.array+json;nulls=stripped; "
                                         "charset=utf-8")
    one = api.get("/entries", params={"select": "label,note", "id": "eq.1"},
                  headers={"Accept": "application/vnd.pgrst.object+json;nulls=stripped"})
    assert one.json() == {"label": "plain"}


def test_prefer_timezone_renders_timestamps_in_that_zone(api: httpx.Client) -> None:
    r = api.get("/entries", params={"select": "at", "id": "eq.1"},
                headers={"Prefer": "timezone=Asia/Bangkok"})
    assert r.json() == [{"at": "2026-01-01T07:00:00+07:00"}]
    assert r.headers["Preference-Applied"] == "timezone=Asia/Bangkok"
    unknown = api.get("/entries", params={"select": "at", "id": "eq.1"},
                      headers={"Prefer": "timezone=Mars/Olympus"})
    assert unknown.json() == [{"at": "2026-01-01T00:00:00+00:00"}]
    assert "Preference-Applied" not in unknown.headers
    strict = api.get("/entries", headers={"Prefer": "handling=strict, timezone=Mars/Olympus"})
    assert (strict.status_code, strict.json()["code"]) == (400, "PGRST122")


def test_missing_default_fills_defaults_and_leaves_identity_and_generated_alone(
        api: httpx.Client) -> None:
    rows = [{"label": "bulk-1", "qty": 4}, {"label": "bulk-2"}, {"label": "bulk-3", "note": "n"}]
    r = api.post("/entries", json=rows, params={"columns": "label,qty,note",
                                                "select": "label,qty,total,note"},
                 headers={"Prefer": "missing=default, return=representation"})
    assert r.status_code == 201, r.text
    assert r.json() == [{"label": "bulk-1", "qty": 4, "total": 40, "note": None},
                        {"label": "bulk-2", "qty": 1, "total": 10, "note": None},
                        {"label": "bulk-3", "qty": 1, "total": 10, "note": "n"}]
    assert r.headers["Preference-Applied"] == "missing=default, return=representation"
    ids = api.get("/entries", params={"select": "id", "label": "like.bulk-*"}).json()
    assert len({e["id"] for e in ids}) == 3
    # Without missing=default an absent value is NULL, as PostgREST does.
    nulls = api.post("/entries", json=[{"label": "n-1", "qty": 2}, {"label": "n-2"}],
                     params={"columns": "label,qty"})
    assert (nulls.status_code, nulls.json()["code"]) == (400, "23502")


def test_planned_count_is_the_planners_estimate_and_estimated_is_exact_below_max_rows(
        api: httpx.Client, media_db: str) -> None:
    planned = api.get("/entries", params={"select": "id", "limit": "1", "qty": "gte.2"},
                      headers={"Prefer": "count=planned"})
    with psycopg.connect(media_db) as conn:
        row = conn.execute("explain (format json) select 1 from public.entries "
                           "where qty >= 2").fetchone()
    assert row is not None
    assert planned.headers["Content-Range"] == f"0-0/{row[0][0]['Plan']['Plan Rows']}"
    assert planned.headers["Preference-Applied"] == "count=planned"
    exact = api.get("/entries", params={"select": "id", "limit": "1"},
                    headers={"Prefer": "count=exact"})
    estimated = api.get("/entries", params={"select": "id", "limit": "1"},
                        headers={"Prefer": "count=estimated"})
    assert estimated.headers["Content-Range"] == exact.headers["Content-Range"]


def test_root_is_the_openapi_document_of_what_the_caller_may_use(media_url: str,
                                                                 media_db: str) -> None:
    with psycopg.connect(media_db, autocommit=True) as conn:
        conn.execute("create table if not exists public.hidden (id int primary key)")
        conn.execute("revoke all on public.hidden from anon, authenticated")
        conn.execute("create or replace function public.twice(n int) returns int "
                     "language sql immutable as $$ select n * 2 $$")
        conn.execute("notify pgrst, 'reload schema'")
    deadline = time.monotonic() + 5
    while True:
        r = httpx.get(media_url + "/", headers={"Authorization": f"Bearer {mint()}"})
        if "/rpc/twice" in r.json()["paths"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/openapi+json; charset=utf-8"
    doc = r.json()
    assert doc["swagger"] == "2.0"
    assert {"/", "/entries", "/rpc/twice"} <= set(doc["paths"])
    assert "/hidden" not in doc["paths"]  # no privilege, not listed
    entries = doc["definitions"]["entries"]
    assert entries["required"] == ["label"]
    assert entries["properties"]["qty"] == {"format": "integer", "type": "integer",
                                            "default": "1"}
    assert entries["properties"]["id"]["description"].startswith("Note:\nThis is a Primary Key")
    assert doc["paths"]["/rpc/twice"]["post"]["parameters"][0]["schema"]["required"] == ["n"]
