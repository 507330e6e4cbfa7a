"""Gateway contract: RPC return shapes, access modes and the error mapping."""

from __future__ import annotations

import time
from typing import Any

import httpx
import psycopg
import pytest
from postgrest import APIError, CountMethod, SyncPostgrestClient

from tests.devstack.conftest import ALICE, mint, unique


def auth(role: str = "authenticated") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(role=role)}"}


def test_scalar_result_with_named_and_default_arguments(rest: httpx.Client) -> None:
    assert rest.post("/rpc/add_them", json={"a": 1, "b": 2}).json() == 3
    assert rest.post("/rpc/add_them", json={"a": 1}).json() == 11
    assert rest.get("/rpc/add_them", params={"a": "4", "b": "5"}).json() == 9


def test_supabase_client_rpc(gateway_url: str) -> None:
    with SyncPostgrestClient(gateway_url, headers=auth()) as client:
        params: dict[str, Any] = {"a": 2, "b": 2}
        assert client.rpc("add_them", params).execute().data == 4
        who: Any = client.rpc("whoami", {}).execute().data
        assert who["uid"] == ALICE


def test_composite_result_is_an_object(rest: httpx.Client) -> None:
    item = rest.post("/rpc/item_by_id", json={"p_id": 3}).json()
    assert item["id"] == 3
    assert item["name"] == "Tarot Basics"


def test_setof_results_are_arrays_and_filterable(rest: httpx.Client) -> None:
    headers = auth()
    titles = [unique("rpc"), unique("rpc")]
    for t in titles:
        rest.post("/notes", json={"title": t, "score": 2}, headers=headers)
    mine = rest.post("/rpc/my_notes", headers=headers).json()
    assert {n["title"] for n in mine} >= set(titles)
    assert all(n["owner_id"] == ALICE for n in mine)
    filtered = rest.get("/rpc/my_notes", params={"select": "title", "title": f"eq.{titles[0]}"},
                        headers=headers)
    assert filtered.json() == [{"title": titles[0]}]
    # Invoker rights: anon has no privilege on notes, so the call fails like a direct read.
    assert rest.post("/rpc/my_notes").status_code == 401
    counted = rest.post("/rpc/item_names", json={"max_id": 3},
                        headers={"Prefer": "count=exact", "Range": "0-0"})
    assert counted.json() == ["ไพ่ทาโรต์ ความรัก", "ดวงการงาน", "Tarot Basics"]
    assert counted.headers["Content-Range"] == "0-2/3"


def test_single_json_parameter_receives_the_body(rest: httpx.Client) -> None:
    assert rest.post("/rpc/echo", json={"payload": {"x": 1}}).json() == {"x": 1}


def test_void_function_answers_204(rest: httpx.Client) -> None:
    r = rest.post("/rpc/noop")
    assert r.status_code == 204
    assert r.content == b""
    assert "Content-Type" not in r.headers


def test_get_runs_read_only_post_read_write_by_volatility(rest: httpx.Client) -> None:
    headers = auth("service_role")
    assert rest.post("/rpc/touch_item", json={"p_id": 1}, headers=headers).json() == 1
    read_only = rest.get("/rpc/touch_item", params={"p_id": "1"}, headers=headers)
    assert (read_only.status_code, read_only.json()["code"]) == (405, "25006")
    assert rest.post("/rpc/whoami").json()["read_only"] == "on"  # stable: READ ONLY


def test_security_definer_function_writes_for_the_caller(rest: httpx.Client) -> None:
    title = unique("definer")
    new_id = rest.post("/rpc/add_note_as_definer", json={"p_title": title}, headers=auth()).json()
    row = rest.get("/notes", params={"id": f"eq.{new_id}"}, headers=auth()).json()
    assert row[0]["owner_id"] == ALICE


def test_unknown_function_or_arguments_are_pgrst202(rest: httpx.Client) -> None:
    missing = rest.post("/rpc/nope", json={})
    assert (missing.status_code, missing.json()["code"]) == (404, "PGRST202")
    extra = rest.post("/rpc/add_them", json={"a": 1, "zzz": 2})
    assert (extra.status_code, extra.json()["code"]) == (404, "PGRST202")
    assert rest.delete("/rpc/noop").json()["code"] == "PGRST101"


@pytest.mark.parametrize(("fn", "status", "code", "message"), [
    ("raise_plain", 400, "P0001", "plain failure"),
    ("raise_custom", 400, "MV001", "insufficient_stars"),
    ("raise_payment", 402, "PT402", "payment required"),
])
def test_raised_errors_map_to_status(rest: httpx.Client, fn: str, status: int, code: str,
                                     message: str) -> None:
    r = rest.post(f"/rpc/{fn}", headers=auth())
    assert r.status_code == status
    body = r.json()
    assert (body["code"], body["message"]) == (code, message)
    assert set(body) == {"code", "details", "hint", "message"}


def test_error_details_and_hint_pass_through(rest: httpx.Client) -> None:
    body = rest.post("/rpc/raise_plain").json()
    assert (body["details"], body["hint"]) == ("some detail", "some hint")
    custom = rest.post("/rpc/raise_custom").json()
    assert custom["details"] == "The balance is too low."


def test_execute_privilege_is_checked_by_postgres(rest: httpx.Client) -> None:
    anon = rest.post("/rpc/private_fn")
    assert (anon.status_code, anon.json()["code"]) == (401, "42501")
    user = rest.post("/rpc/private_fn", headers=auth())
    assert (user.status_code, user.json()["code"]) == (403, "42501")
    assert rest.post("/rpc/raise_payment").status_code == 401  # revoked from anon


def test_statement_timeout_of_the_role_cancels_the_call(rest: httpx.Client) -> None:
    r = rest.post("/rpc/sleepy", json={"seconds": 2}, headers=auth("gw_hasty"))
    assert r.status_code == 500
    assert r.json()["code"] == "57014"
    assert r.json()["message"] == "canceling statement due to statement timeout"
    fast = rest.post("/rpc/sleepy", json={"seconds": 0}, headers=auth("gw_hasty"))
    assert fast.json() == 1


def test_client_sees_custom_sqlstate(gateway_url: str) -> None:
    with SyncPostgrestClient(gateway_url, headers=auth()) as client, \
            pytest.raises(APIError) as caught:
        client.rpc("raise_custom", {}).execute()
    assert caught.value.code == "MV001"


def test_rpc_by_get_head_and_count_through_the_client(gateway_url: str) -> None:
    add: dict[str, Any] = {"a": 3, "b": 4}
    names: dict[str, Any] = {"max_id": 3}
    with SyncPostgrestClient(gateway_url, headers=auth()) as client:
        assert client.rpc("add_them", add, get=True).execute().data == 7
        counted: Any = client.rpc("item_names", names, get=True,
                                  count=CountMethod.exact).execute()
        assert counted.data == ["ไพ่ทาโรต์ ความรัก", "ดวงการงาน", "Tarot Basics"]
        assert counted.count == 3
        head: Any = client.rpc("item_names", names, head=True,
                               count=CountMethod.exact).execute()
        assert (head.data, head.count) == ([], 3)


def test_rpc_get_honours_range_post_ignores_it(rest: httpx.Client) -> None:
    got = rest.get("/rpc/item_names", params={"max_id": "3"},
                   headers={"Range": "1-1", "Prefer": "count=exact"})
    assert (got.status_code, got.json()) == (206, ["ดวงการงาน"])
    assert got.headers["Content-Range"] == "1-1/3"
    posted = rest.post("/rpc/item_names", json={"max_id": 3}, headers={"Range": "1-1"})
    assert len(posted.json()) == 3


def test_singular_rpc_results(rest: httpx.Client) -> None:
    single = {"Accept": "application/vnd.pgrst.object+json"}
    many = rest.post("/rpc/item_names", json={"max_id": 3}, headers=single)
    assert (many.status_code, many.json()["code"]) == (406, "PGRST116")
    assert many.json()["details"] == "The result contains 3 rows"
    one = rest.post("/rpc/item_names", json={"max_id": 1}, headers=single)
    assert one.json() == "ไพ่ทาโรต์ ความรัก"
    assert one.headers["Content-Type"].startswith("application/vnd.pgrst.object+json")


def test_singular_volatile_rpc_is_rolled_back_on_406(rest: httpx.Client) -> None:
    prefix = unique("rpc-406")
    r = rest.post("/rpc/add_two_notes", json={"p_prefix": prefix},
                  headers={**auth(), "Accept": "application/vnd.pgrst.object+json"})
    assert (r.status_code, r.json()["details"]) == (406, "The result contains 2 rows")
    rows = rest.get("/notes", params={"title": f"like.{prefix}*"}, headers=auth()).json()
    assert rows == []
    kept = rest.post("/rpc/add_two_notes", json={"p_prefix": prefix}, headers=auth())
    assert len(kept.json()) == 2


def test_max_rows_caps_set_returning_functions(rest: httpx.Client) -> None:
    r = rest.post("/rpc/all_numbers", headers={"Prefer": "count=exact"})
    assert r.status_code == 206
    assert len(r.json()) == 1000
    assert r.headers["Content-Range"] == "0-999/1200"


def test_isolation_level_set_for_the_role_is_used_and_the_default_otherwise(
        rest: httpx.Client, gw_database: str) -> None:
    # A role with its own isolation needs the explicit BEGIN; the others run without one.
    with psycopg.connect(gw_database, autocommit=True) as conn:
        conn.execute("do $$ begin if not exists (select 1 from pg_roles where rolname = "
                     "'gw_strict') then create role gw_strict nologin noinherit; end if; end $$")
        conn.execute("grant gw_strict to authenticator")
        conn.execute("grant usage on schema public to gw_strict")
        dbname = conn.info.dbname
        conn.execute(f'alter role gw_strict in database "{dbname}" '
                     "set default_transaction_isolation = 'serializable'")
        conn.execute("create or replace function public.tx_isolation() returns text "
                     "language sql volatile as $$ select current_setting('transaction_isolation')"
                     " || '/' || current_setting('transaction_read_only') $$")
        conn.execute("grant execute on function public.tx_isolation() to gw_strict, "
                     "authenticated")
        conn.execute("notify pgrst, 'reload schema'")
    deadline = time.monotonic() + 5
    while (strict := rest.post("/rpc/tx_isolation", headers=auth("gw_strict"))).status_code \
            != 200 or strict.json() != "serializable/off":
        assert time.monotonic() < deadline, strict.text
        time.sleep(0.05)
    assert rest.get("/rpc/tx_isolation", headers=auth("gw_strict")).json() == "serializable/on"
    assert rest.post("/rpc/tx_isolation", headers=auth()).json() == "read committed/off"
    assert rest.get("/rpc/tx_isolation", headers=auth()).json() == "read committed/on"
