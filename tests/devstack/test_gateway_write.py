"""Gateway contract: insert, upsert, update, delete with Prefer, under RLS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from postgrest import APIError, SyncPostgrestClient

from tests.devstack.conftest import ALICE, BOB, mint, unique

REPRESENTATION = {"Prefer": "return=representation"}


def auth(sub: str = ALICE) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(sub=sub)}"}


@pytest.fixture()
def alice(gateway_url: str) -> Iterator[SyncPostgrestClient]:
    with SyncPostgrestClient(gateway_url, headers=auth(ALICE)) as client:
        yield client


def test_insert_returns_representation_with_defaults(alice: SyncPostgrestClient) -> None:
    title = unique("first")
    rows: Any = alice.from_("notes").insert({"title": title, "score": 2}).execute().data
    assert len(rows) == 1
    assert rows[0]["title"] == title
    assert rows[0]["owner_id"] == ALICE  # column default auth.uid() applied
    assert rows[0]["body"] is None


def test_insert_minimal_is_201_without_body(rest: httpx.Client) -> None:
    r = rest.post("/notes", json={"title": unique("min")},
                  headers={**auth(), "Prefer": "return=minimal"})
    assert r.status_code == 201
    assert r.content == b""
    assert "Content-Type" not in r.headers
    assert r.headers["Content-Range"] == "*/*"


def test_write_only_policy_minimal_succeeds_representation_is_forbidden(
        rest: httpx.Client) -> None:
    ok = rest.post("/drop_box", json={"message": "hello"},
                   headers={**auth(), "Prefer": "return=minimal"})
    assert ok.status_code == 201
    denied = rest.post("/drop_box", json={"message": "hello"},
                       headers={**auth(), **REPRESENTATION})
    assert denied.status_code == 403
    assert denied.json()["code"] == "42501"
    assert "row-level security" in denied.json()["message"]


def test_headers_only_insert_sets_location(rest: httpx.Client) -> None:
    r = rest.post("/notes", json={"title": unique("loc")},
                  headers={**auth(), "Prefer": "return=headers-only"})
    assert r.status_code == 201
    assert r.headers["Location"].startswith("/notes?id=eq.")


def test_bulk_insert_with_columns_is_atomic(rest: httpx.Client) -> None:
    good, dup = unique("bulk"), unique("bulk")
    r = rest.post("/notes", params={"columns": '"title","score"'},
                  json=[{"title": good, "score": 1}, {"title": dup, "score": 1},
                        {"title": dup, "score": 2}],
                  headers={**auth(), **REPRESENTATION})
    assert r.status_code == 409
    assert r.json()["code"] == "23505"
    check = rest.get("/notes", params={"title": f"eq.{good}"}, headers=auth())
    assert check.json() == []


def test_body_errors(rest: httpx.Client) -> None:
    mismatched = rest.post("/notes", json=[{"title": "a"}, {"body": "b"}], headers=auth())
    assert (mismatched.status_code, mismatched.json()["message"]) == (400,
                                                                      "All object keys must match")
    invalid = rest.post("/notes", content=b"{not json", headers=auth())
    assert invalid.json()["code"] == "PGRST102"
    column = rest.post("/notes", json={"color": "red"}, headers=auth())
    assert column.status_code == 400
    assert column.json()["code"] == "PGRST204"
    assert column.json()["message"] == ("Could not find the 'color' column of 'notes' in the "
                                        "schema cache")


def test_check_and_unique_violations(rest: httpx.Client) -> None:
    check = rest.post("/notes", json={"title": unique("neg"), "score": -1}, headers=auth())
    assert (check.status_code, check.json()["code"]) == (400, "23514")
    title = unique("dup")
    assert rest.post("/notes", json={"title": title}, headers=auth()).status_code == 201
    dup = rest.post("/notes", json={"title": title}, headers=auth())
    assert (dup.status_code, dup.json()["code"]) == (409, "23505")


def test_anon_insert_is_401_other_tenant_insert_is_403(rest: httpx.Client) -> None:
    anon = rest.post("/notes", json={"title": "x"})
    assert anon.status_code == 401
    spoof = rest.post("/notes", json={"title": unique("spoof"), "owner_id": BOB}, headers=auth())
    assert (spoof.status_code, spoof.json()["code"]) == (403, "42501")


def test_upsert_merge_updates_and_reports_200(alice: SyncPostgrestClient,
                                              rest: httpx.Client) -> None:
    title = unique("up")
    created = rest.post("/notes", json={"title": title, "score": 1},
                        headers={**auth(), **REPRESENTATION}).json()[0]
    merged = rest.post("/notes", json={"id": created["id"], "title": title, "score": 5},
                       headers={**auth(), "Prefer": "return=representation,"
                                "resolution=merge-duplicates"})
    assert merged.status_code == 200
    assert merged.json()[0]["score"] == 5
    assert merged.headers["Preference-Applied"] == ("resolution=merge-duplicates, "
                                                    "return=representation")
    fresh: Any = alice.from_("notes").upsert({"title": unique("up2"), "score": 3},
                                        on_conflict="owner_id,title").execute()
    assert fresh.data[0]["score"] == 3
    ignored = rest.post("/notes", params={"on_conflict": "owner_id,title"},
                        json={"title": title, "score": 9},
                        headers={**auth(), "Prefer": "resolution=ignore-duplicates,"
                                 "return=representation"})
    assert (ignored.status_code, ignored.json()) == (201, [])


def test_upsert_over_another_tenants_row_is_forbidden(rest: httpx.Client) -> None:
    bobs = rest.post("/notes", json={"title": unique("bob")},
                     headers={**auth(BOB), **REPRESENTATION}).json()[0]
    r = rest.post("/notes", json={"id": bobs["id"], "title": "mine now"},
                  headers={**auth(), "Prefer": "resolution=merge-duplicates"})
    assert (r.status_code, r.json()["code"]) == (403, "42501")


def test_missing_default_uses_column_defaults(rest: httpx.Client) -> None:
    # Without missing=default a key absent from a row is NULL (score is NOT NULL: 23502).
    null = rest.post("/notes", params={"columns": '"title","score"'},
                     json=[{"title": unique("md")}], headers=auth())
    assert (null.status_code, null.json()["code"]) == (400, "23502")
    r = rest.post("/notes", params={"columns": '"title","score","owner_id"'},
                  json=[{"title": unique("md")}],
                  headers={**auth(), "Prefer": "return=representation,missing=default"})
    assert r.status_code == 201
    assert r.json()[0]["score"] == 0
    assert r.json()[0]["owner_id"] == ALICE


def test_update_and_delete_of_other_tenant_touch_nothing(rest: httpx.Client) -> None:
    bobs = rest.post("/notes", json={"title": unique("bob")},
                     headers={**auth(BOB), **REPRESENTATION}).json()[0]
    upd = rest.patch("/notes", params={"id": f"eq.{bobs['id']}"}, json={"title": "hijacked"},
                     headers={**auth(), **REPRESENTATION})
    assert (upd.status_code, upd.json()) == (200, [])
    assert upd.headers["Content-Range"] == "*/*"
    gone = rest.request("DELETE", "/notes", params={"id": f"eq.{bobs['id']}"},
                        headers=auth())
    assert gone.status_code == 204
    still = rest.get("/notes", params={"id": f"eq.{bobs['id']}"}, headers=auth(BOB))
    assert still.json()[0]["title"] == bobs["title"]


def test_update_and_delete_own_rows(alice: SyncPostgrestClient, rest: httpx.Client) -> None:
    title = unique("mine")
    row: Any = alice.from_("notes").insert({"title": title}).execute().data[0]
    updated: Any = alice.from_("notes").update({"score": 7}).eq("id", row["id"]).execute()
    assert updated.data[0]["score"] == 7
    minimal = rest.patch("/notes", params={"id": f"eq.{row['id']}"}, json={"body": "x"},
                         headers={**auth(), "Prefer": "count=exact"})
    assert minimal.status_code == 204
    assert minimal.headers["Content-Range"] == "0-0/1"
    deleted: Any = alice.from_("notes").delete().eq("id", row["id"]).execute()
    assert [r["id"] for r in deleted.data] == [row["id"]]


def test_singular_mutation_is_rolled_back_on_406(rest: httpx.Client) -> None:
    titles = [unique("s"), unique("s")]
    for t in titles:
        rest.post("/notes", json={"title": t, "score": 1}, headers=auth())
    r = rest.patch("/notes", params={"title": f"in.({','.join(titles)})"}, json={"score": 4},
                   headers={**auth(), "Accept": "application/vnd.pgrst.object+json"})
    assert r.status_code == 406
    assert r.json()["details"] == "The result contains 2 rows"
    scores = rest.get("/notes", params={"select": "score", "title": f"in.({','.join(titles)})"},
                      headers=auth()).json()
    assert scores == [{"score": 1}, {"score": 1}]


def test_filterless_update_and_delete_are_refused(rest: httpx.Client) -> None:
    upd = rest.patch("/notes", json={"score": 1}, headers=auth())
    assert (upd.status_code, upd.json()["code"]) == (400, "21000")
    assert upd.json()["message"] == "UPDATE requires a WHERE clause"
    dele = rest.delete("/notes", headers=auth())
    assert (dele.status_code, dele.json()["message"]) == (400, "DELETE requires a WHERE clause")


def test_max_affected_with_strict_handling(rest: httpx.Client) -> None:
    titles = [unique("m"), unique("m")]
    for t in titles:
        rest.post("/notes", json={"title": t}, headers=auth())
    r = rest.patch("/notes", params={"title": f"in.({','.join(titles)})"}, json={"score": 3},
                   headers={**auth(), "Prefer": "handling=strict,max-affected=1"})
    assert (r.status_code, r.json()["code"]) == (400, "PGRST124")


def test_client_error_is_raised_as_api_error(alice: SyncPostgrestClient) -> None:
    with pytest.raises(APIError) as caught:
        alice.from_("notes").insert({"title": unique("bad"), "score": -5}).execute()
    assert caught.value.code == "23514"


def test_put_creates_then_replaces_the_row_named_by_its_primary_key(rest: httpx.Client) -> None:
    note_id = 10**9 + uuid.uuid4().int % 10**9  # far above the identity sequence
    body = {"id": note_id, "title": unique("put"), "score": 1}
    created = rest.put("/notes", params={"id": f"eq.{note_id}"}, json=body,
                       headers={**auth(), **REPRESENTATION})
    assert created.status_code in (200, 201)  # v12 answers 200, v13 201 for a created row
    assert created.json()[0]["owner_id"] == ALICE
    replaced = rest.put("/notes", params={"id": f"eq.{note_id}"},
                        json=[{**body, "score": 6}], headers={**auth(), **REPRESENTATION})
    assert replaced.status_code == 200
    assert replaced.json()[0]["score"] == 6
    minimal = rest.put("/notes", params={"id": f"eq.{note_id}"}, json={**body, "score": 7},
                       headers={**auth(), "Prefer": "return=minimal"})
    assert minimal.status_code == 204
    assert minimal.content == b""
    assert "Content-Type" not in minimal.headers
    assert minimal.headers["Preference-Applied"] == "return=minimal"
    row = rest.get("/notes", params={"id": f"eq.{note_id}", "select": "score"}, headers=auth())
    assert row.json() == [{"score": 7}]


def test_put_refuses_anything_but_the_whole_primary_key(rest: httpx.Client) -> None:
    body = {"id": 1, "title": "x"}
    for params in ({"title": "eq.x"}, {"id": "gt.1"}, {"id": "not.eq.1"}, {"id": "in.(1)"},
                   {"or": "(id.eq.1)"}, {}):
        r = rest.put("/notes", params=params, json=body, headers=auth())
        assert (r.status_code, r.json()["code"]) == (405, "PGRST105"), params
    paged = rest.put("/notes", params={"id": "eq.1", "limit": "1"}, json=body, headers=auth())
    assert (paged.status_code, paged.json()["code"]) == (400, "PGRST114")


def test_put_payload_key_must_match_the_url_and_nothing_is_written(rest: httpx.Client) -> None:
    title = unique("put-mismatch")
    r = rest.put("/notes", params={"id": "eq.987654321"}, json={"id": 987654320, "title": title},
                 headers=auth())
    assert (r.status_code, r.json()["code"]) == (400, "PGRST115")
    assert rest.get("/notes", params={"title": f"eq.{title}"}, headers=auth()).json() == []


def test_put_over_another_tenants_row_is_forbidden(rest: httpx.Client) -> None:
    bobs = rest.post("/notes", json={"title": unique("bob-put")},
                     headers={**auth(BOB), **REPRESENTATION}).json()[0]
    r = rest.put("/notes", params={"id": f"eq.{bobs['id']}"},
                 json={"id": bobs["id"], "title": "taken"}, headers=auth())
    assert (r.status_code, r.json()["code"]) == (403, "42501")


def test_upsert_variants_through_the_client(alice: SyncPostgrestClient,
                                            rest: httpx.Client) -> None:
    first, second = unique("uv"), unique("uv")
    # A list with default_to_null=False: columns= plus missing=default, score takes its default.
    payload: list[dict[str, Any]] = [{"title": first, "score": 4}, {"title": second}]
    rows: Any = alice.from_("notes").upsert(
        payload, on_conflict="owner_id,title",
        default_to_null=False).execute().data
    assert [(r["title"], r["score"]) for r in rows] == [(first, 4), (second, 0)]
    # ignore_duplicates leaves the existing row alone and returns nothing for it.
    ignored: Any = alice.from_("notes").upsert(
        {"title": first, "score": 9}, on_conflict="owner_id,title",
        ignore_duplicates=True).execute()
    assert ignored.data == []
    # With columns= and no missing=default, a key absent from a row overwrites with NULL.
    merged = rest.post("/notes", params={"on_conflict": "owner_id,title",
                                         "columns": '"title","body"'},
                       json=[{"title": first, "body": "b"}, {"title": second}],
                       headers={**auth(), "Prefer": "resolution=merge-duplicates,"
                                "return=representation"})
    assert merged.status_code == 200  # every row took the update path
    assert [(r["body"], r["score"]) for r in merged.json()] == [("b", 4), (None, 0)]


def test_mutations_are_not_capped_by_max_rows(rest: httpx.Client) -> None:
    batch = unique("tally")
    r = rest.post("/tallies", json=[{"batch": batch}] * 1001,
                  headers={**auth(), "Prefer": "return=representation,count=exact"})
    assert r.status_code == 201
    assert len(r.json()) == 1001
    assert r.headers["Content-Range"] == "*/1001"
    read = rest.get("/tallies", params={"batch": f"eq.{batch}"},
                    headers={**auth(), "Prefer": "count=exact"})
    assert (read.status_code, len(read.json())) == (206, 1000)
    assert read.headers["Content-Range"] == "0-999/1001"
