"""Gateway contract: reads (filters, order, ranges, counts, singular) via supabase-py and HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from postgrest import APIError, CountMethod, SyncPostgrestClient

from supabase import Client, ClientOptions, create_client
from tests.devstack.conftest import mint


@pytest.fixture(scope="module")
def supabase_client(gateway_url: str) -> Iterator[Client]:
    # An http client of our own: without one supabase-py passes the deprecated timeout/verify.
    with httpx.Client(timeout=10) as http:
        yield create_client(gateway_url.removesuffix("/rest/v1"), mint(role="anon", sub=None),
                            ClientOptions(httpx_client=http))


@pytest.fixture(scope="module")
def pg(gateway_url: str) -> Iterator[SyncPostgrestClient]:
    token = mint()
    with SyncPostgrestClient(gateway_url, headers={"apikey": token,
                                                   "Authorization": f"Bearer {token}"}) as client:
        yield client


def ids(rows: Any) -> list[int]:
    return [r["id"] for r in rows]


def test_select_columns_filter_and_order_through_supabase(supabase_client: Client) -> None:
    result: Any = (supabase_client.table("items").select("id,name,price").eq("active", True)
              .order("id", desc=True).execute())
    assert ids(result.data) == [4, 3, 1]
    assert set(result.data[0]) == {"id", "name", "price"}
    assert result.data[2]["price"] == 1.20


def test_thai_ilike_matches_substrings(pg: SyncPostgrestClient) -> None:
    rows = pg.from_("items").select("id").ilike("name", "*ความรัก*").order("id").execute().data
    assert ids(rows) == [1, 4]
    english = pg.from_("items").select("id").ilike("name", "%TAROT%").execute().data
    assert ids(english) == [3]


def test_comparison_and_set_operators(pg: SyncPostgrestClient) -> None:
    q = pg.from_("items").select("id")
    assert ids(q.gt("qty", 1).lt("qty", 7).execute().data) == [1]
    assert ids(pg.from_("items").select("id").gte("price", 10).order("id").execute().data) == [2, 4]
    assert ids(pg.from_("items").select("id").lte("id", 2).neq("id", 1).execute().data) == [2]
    assert ids(pg.from_("items").select("id").in_("id", [1, 3, 9]).order("id")
               .execute().data) == [1, 3]
    assert ids(pg.from_("items").select("id").in_("name", ["a,b (odd) name"])
               .execute().data) == [5]
    assert ids(pg.from_("items").select("id").cs("tags", ["love"]).order("id")
               .execute().data) == [1, 4]
    assert ids(pg.from_("items").select("id").cd("tags", ["tarot", "love"]).order("id")
               .execute().data) == [1, 3, 5]
    assert ids(pg.from_("items").select("id").like("name", "Tarot%").execute().data) == [3]


def test_is_null_and_not(pg: SyncPostgrestClient) -> None:
    assert ids(pg.from_("items").select("id").is_("qty", None).execute().data) == [2]
    # not.eq follows SQL NULL semantics: the NULL row is excluded.
    rows = pg.from_("items").select("id").not_.eq("qty", 3).order("id").execute().data
    assert ids(rows) == [3, 4, 5]
    assert ids(pg.from_("items").select("id").not_.is_("meta", None).order("id")
               .execute().data) == [1, 2, 4]


def test_or_and_logic_trees(rest: httpx.Client) -> None:
    r = rest.get("/items", params={"select": "id", "or": "(id.eq.1,and(qty.gte.7,active.is.true))",
                                   "order": "id"})
    assert ids(r.json()) == [1, 3]
    r = rest.get("/items", params={"select": "id", "not.or": "(id.lt.3,id.gt.4)"})
    assert ids(r.json()) == [3, 4]
    r = rest.get("/items", params={"select": "id", "or": '(name.eq."a,b (odd) name",id.eq.2)',
                                   "order": "id"})
    assert ids(r.json()) == [2, 5]


def test_json_path_select_and_filter(rest: httpx.Client) -> None:
    r = rest.get("/items", params={"select": "id,origin:meta->>origin", "meta->>origin": "eq.th",
                                   "order": "id"})
    assert r.json() == [{"id": 1, "origin": "th"}, {"id": 4, "origin": "th"}]


def test_full_text_search_on_tsvector(pg: SyncPostgrestClient) -> None:
    rows = pg.from_("items").select("id").text_search(
        "doc", "tarot", {"config": "simple"}).order("id").execute().data
    assert ids(rows) == [1, 3]


def test_order_with_nulls_first(rest: httpx.Client) -> None:
    r = rest.get("/items", params={"select": "id", "order": "qty.desc.nullsfirst,id"})
    assert ids(r.json()) == [2, 3, 1, 4, 5]


def test_limit_offset_and_exact_count(pg: SyncPostgrestClient, rest: httpx.Client) -> None:
    result = pg.from_("items").select("id", count=CountMethod.exact).order("id").range(1, 2).execute()
    assert ids(result.data) == [2, 3]
    assert result.count == 5
    r = rest.get("/items", params={"select": "id", "order": "id", "limit": "2", "offset": "1"},
                 headers={"Prefer": "count=exact"})
    assert r.status_code == 206
    assert r.headers["Content-Range"] == "1-2/5"
    assert r.headers["Preference-Applied"] == "count=exact"
    full = rest.get("/items", params={"select": "id"}, headers={"Prefer": "count=exact"})
    assert full.status_code == 200
    assert full.headers["Content-Range"] == "0-4/5"


def test_content_range_without_count(rest: httpx.Client) -> None:
    r = rest.get("/items", params={"select": "id", "id": "gt.3"})
    assert r.status_code == 200
    assert r.headers["Content-Range"] == "0-1/*"
    empty = rest.get("/items", params={"id": "gt.100"})
    assert empty.json() == []
    assert empty.headers["Content-Range"] == "*/*"


def test_range_header_and_unsatisfiable_offsets(rest: httpx.Client) -> None:
    r = rest.get("/items", params={"select": "id", "order": "id"},
                 headers={"Range": "0-1", "Prefer": "count=exact"})
    assert r.status_code == 206
    assert ids(r.json()) == [1, 2]
    assert r.headers["Content-Range"] == "0-1/5"
    bad = rest.get("/items", params={"offset": "20"}, headers={"Prefer": "count=exact"})
    assert bad.status_code == 416
    assert bad.json()["code"] == "PGRST103"
    assert bad.json()["details"] == "An offset of 20 was requested, but there are only 5 rows."
    assert bad.headers["Content-Range"] == "*/5"
    assert rest.get("/items", headers={"Range": "3-1"}).status_code == 416
    assert rest.get("/items", params={"limit": "-1"}).json()["code"] == "PGRST103"
    assert rest.get("/items", params={"limit": "0"}).json() == []


def test_max_rows_caps_reads(rest: httpx.Client) -> None:
    r = rest.get("/numbers", params={"select": "n"}, headers={"Prefer": "count=exact"})
    assert r.status_code == 206
    assert len(r.json()) == 1000
    assert r.headers["Content-Range"] == "0-999/1200"


def test_head_returns_headers_only(rest: httpx.Client) -> None:
    r = rest.head("/items", headers={"Prefer": "count=exact"})
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["Content-Range"] == "0-4/5"


def test_singular_object_and_406(pg: SyncPostgrestClient, rest: httpx.Client) -> None:
    one = pg.from_("items").select("id,name").eq("id", 3).single().execute()
    assert one.data == {"id": 3, "name": "Tarot Basics"}
    for query, n in (({"id": "gt.100"}, 0), ({"id": "lt.3"}, 2)):
        r = rest.get("/items", params=query,
                     headers={"Accept": "application/vnd.pgrst.object+json"})
        assert r.status_code == 406
        body = r.json()
        assert body["code"] == "PGRST116"
        assert body["details"] == f"The result contains {n} rows"
    with pytest.raises(APIError) as caught:
        pg.from_("items").select("id").gt("id", 100).single().execute()
    assert caught.value.code == "PGRST116"


def test_rls_hides_other_tenants_and_anon_sees_public_rows(rest: httpx.Client) -> None:
    assert rest.get("/notes").status_code == 401  # anon has no privilege on notes
    assert len(rest.get("/items").json()) == 5


def test_parse_errors_and_unknown_names(rest: httpx.Client) -> None:
    bad_op = rest.get("/items", params={"id": "equals.1"})
    assert bad_op.status_code == 400
    assert bad_op.json()["code"] == "PGRST100"
    assert rest.get("/items", params={"order": "id.sideways"}).json()["code"] == "PGRST100"
    missing = rest.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["code"] == "PGRST205"
    column = rest.get("/items", params={"select": "nope"})
    assert (column.status_code, column.json()["code"]) == (400, "42703")
    coercion = rest.get("/items", params={"id": "eq.abc"})
    assert (coercion.status_code, coercion.json()["code"]) == (400, "22P02")
    operator = rest.get("/items", params={"qty": "like.1*"})
    assert (operator.status_code, operator.json()["code"]) == (404, "42883")
    embed = rest.get("/items", params={"select": "id,owner:users(name)"})
    assert (embed.status_code, embed.json()["code"]) == (400, "PGRST200")
    assert rest.get("/items", headers={"Accept": "text/html"}).json()["code"] == "PGRST107"
    schema = rest.get("/items", headers={"Accept-Profile": "private"})
    assert (schema.status_code, schema.json()["code"]) == (406, "PGRST106")


def test_boolean_and_numeric_values_are_coerced_by_postgres(rest: httpx.Client) -> None:
    r = rest.get("/items", params={"select": "id,price", "active": "eq.False", "order": "id"})
    assert r.json() == [{"id": 2, "price": 10.00}, {"id": 5, "price": 0.00}]
    assert b'"price":10.00' in r.content.replace(b" ", b"")


def test_range_header_without_count_and_with_limit(rest: httpx.Client) -> None:
    plain = rest.get("/items", params={"select": "id", "order": "id"}, headers={"Range": "0-1"})
    assert (plain.status_code, ids(plain.json())) == (200, [1, 2])
    assert plain.headers["Content-Range"] == "0-1/*"
    # Range and limit/offset intersect.
    both = rest.get("/items", params={"select": "id", "order": "id", "limit": "1"},
                    headers={"Range": "0-2"})
    assert ids(both.json()) == [1]
    open_ended = rest.get("/items", params={"select": "id", "order": "id"},
                          headers={"Range": "3-", "Range-Unit": "items"})
    assert ids(open_ended.json()) == [4, 5]
    assert open_ended.headers["Content-Range"] == "3-4/*"


def test_head_through_the_client_counts_without_rows(pg: SyncPostgrestClient,
                                                     rest: httpx.Client) -> None:
    result: Any = pg.from_("items").select("id", count=CountMethod.exact, head=True).eq(
        "active", True).execute()
    assert (result.data, result.count) == ([], 3)
    empty = rest.head("/items", params={"id": "gt.100"}, headers={"Prefer": "count=exact"})
    assert (empty.status_code, empty.content, empty.headers["Content-Range"]) == (200, b"", "*/0")


def test_planned_and_estimated_counts_report_a_total(rest: httpx.Client) -> None:
    for method in ("planned", "estimated"):
        r = rest.get("/items", params={"select": "id", "limit": "2"},
                     headers={"Prefer": f"count={method}"})
        assert r.headers["Preference-Applied"] == f"count={method}"
        shown, _, total = r.headers["Content-Range"].partition("/")
        assert shown == "0-1"
        assert int(total) >= 2
        assert r.status_code in (200, 206)


def test_maybe_single_returns_none_for_no_row(pg: SyncPostgrestClient) -> None:
    assert pg.from_("items").select("id").eq("id", 99).maybe_single().execute() is None
    one: Any = pg.from_("items").select("id").eq("id", 2).maybe_single().execute()
    assert one.data == {"id": 2}
