"""Gateway contract: an RPC's result takes select, filters, order, limit, Range and counts on
POST, GET and HEAD (never silently dropped); max-affected on RPC; overloads and single unnamed
parameters resolved as PostgREST does (PGRST202/PGRST203)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.devstack.conftest import (
    authorized_client,
    database_with,
    gateway_serving,
)

RPC_SQL = """
create table public.cards (id int primary key, arcana text not null, name text not null,
  drawn int not null default 0);
alter table public.cards enable row level security;
create policy cards_read on public.cards for select to authenticated using (true);
create policy cards_write on public.cards for update to authenticated using (true);
grant update on public.cards to authenticated;
insert into public.cards values (1, 'major', 'The Fool', 0), (2, 'major', 'The Magician', 0),
  (3, 'minor', 'Ace of Cups', 0), (4, 'minor', 'Two of Cups', 0), (5, 'major', 'The Star', 0);

create function public.search_cards(q text) returns setof public.cards
language sql stable as $$ select * from public.cards where name ilike '%' || q || '%' order by id $$;
create function public.many_cards() returns setof public.cards
language plpgsql stable rows 42 as $$ begin return query select * from public.cards; end $$;
create function public.card_count() returns int language sql stable as $$
  select count(*)::int from public.cards $$;
create function public.draw_cards(p_arcana text) returns setof public.cards
language sql volatile as $$
  update public.cards set drawn = drawn + 1 where arcana = p_arcana returning * $$;

create function public.pick(a int) returns text language sql immutable as $$ select 'one' $$;
create function public.pick(a int, b int default 1) returns text language sql immutable as $$
  select 'two' $$;
create function public.shout(text) returns text language sql immutable as $$
  select upper($1) $$;
create function public.double_it(int) returns int language sql immutable as $$
  select $1 * 2 $$;
create function public.keys_of(jsonb) returns int language sql immutable as $$
  select count(*)::int from jsonb_object_keys($1) $$;
"""


@pytest.fixture(scope="module")
def rpc_url(database_factory: Any) -> Iterator[str]:
    with gateway_serving(database_with(database_factory, RPC_SQL), "gateway-rpc") as url:
        yield url


@pytest.fixture()
def api(rpc_url: str) -> Iterator[httpx.Client]:
    with authorized_client(rpc_url) as client:
        yield client


def test_post_filters_select_order_and_limit_apply_to_the_result(api: httpx.Client) -> None:
    r = api.post("/rpc/search_cards", json={"q": "the"},
                 params={"select": "id,name", "arcana": "eq.major", "order": "id.desc",
                         "limit": "2"})
    assert r.json() == [{"id": 5, "name": "The Star"}, {"id": 2, "name": "The Magician"}]
    logic = api.post("/rpc/search_cards", json={"q": "o"},
                     params={"select": "id", "or": "(id.eq.1,id.eq.4)"})
    assert logic.json() == [{"id": 1}, {"id": 4}]


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
def test_counts_and_ranges_on_every_method(api: httpx.Client, method: str) -> None:
    kwargs: dict[str, Any] = {"params": {"select": "id", "arcana": "eq.minor"}}
    if method == "POST":
        kwargs["json"] = {"q": ""}
    else:
        kwargs["params"]["q"] = ""
    kwargs["headers"] = {"Prefer": "count=exact", "Range": "0-0"}
    r = api.request(method, "/rpc/search_cards", **kwargs)
    if method != "GET":  # Range is read on GET only (v13); limit/offset work everywhere
        assert (r.status_code, r.headers["Content-Range"]) == (200, "0-1/2")
    else:
        assert (r.status_code, r.headers["Content-Range"]) == (206, "0-0/2")
    if method == "GET":
        assert r.json() == [{"id": 3}]


def test_scalar_results_count_one_and_refuse_unknown_filters(api: httpx.Client) -> None:
    counted = api.post("/rpc/card_count", headers={"Prefer": "count=exact"})
    assert counted.json() == 5
    assert counted.headers["Content-Range"] == "0-0/1"
    filtered = api.post("/rpc/card_count", params={"arcana": "eq.major"})
    assert filtered.status_code == 400
    assert filtered.json()["code"] == "42703"


def test_max_affected_on_rpc_rolls_back_and_needs_a_set(api: httpx.Client, rpc_url: str) -> None:
    strict = {"Prefer": "handling=strict, max-affected=2"}
    over = api.post("/rpc/draw_cards", json={"p_arcana": "major"}, headers=strict)
    assert (over.status_code, over.json()["code"]) == (400, "PGRST124")
    assert over.json()["details"] == "The query affects 3 rows"
    drawn = api.get("/cards", params={"select": "drawn", "arcana": "eq.major"}).json()
    assert {c["drawn"] for c in drawn} == {0}  # rolled back
    within = api.post("/rpc/draw_cards", json={"p_arcana": "minor"}, headers=strict)
    assert within.status_code == 200
    assert within.headers["Preference-Applied"] == "handling=strict, max-affected=2"
    assert len(within.json()) == 2
    scalar = api.post("/rpc/card_count", headers=strict)
    assert (scalar.status_code, scalar.json()["code"]) == (400, "PGRST128")


def test_overloads_that_both_fit_are_pgrst203(api: httpx.Client) -> None:
    r = api.post("/rpc/pick", json={"a": 1})
    assert r.status_code == 300
    assert r.json()["code"] == "PGRST203"
    assert "public.pick(a => integer)" in r.json()["message"]
    assert api.post("/rpc/pick", json={"a": 1, "b": 2}).json() == "two"


def test_single_unnamed_parameters_by_media_type(api: httpx.Client) -> None:
    text = api.post("/rpc/shout", content="hello", headers={"Content-Type": "text/plain"})
    assert (text.status_code, text.json()) == (200, "HELLO")
    assert api.post("/rpc/keys_of", json={"x": 1, "y": 2}).json() == 2
    # PostgREST passes no other unnamed type: an int parameter cannot be called.
    unnamed_int = api.post("/rpc/double_it", json=2)
    assert (unnamed_int.status_code, unnamed_int.json()["code"]) == (404, "PGRST202")
    wrong_media = api.post("/rpc/keys_of", content="x", headers={"Content-Type": "text/plain"})
    assert wrong_media.json()["details"] == ("Searched for the function public.keys_of with a "
                                             "single unnamed text parameter, but no matches "
                                             "were found in the schema cache.")


def test_planned_count_of_a_function_is_its_row_estimate(api: httpx.Client) -> None:
    for method in ("POST", "GET", "HEAD"):
        r = api.request(method, "/rpc/many_cards", params={"limit": "1"},
                        headers={"Prefer": "count=planned"})
        assert r.headers["Content-Range"] == "0-0/42"  # the function's declared ROWS
        assert r.headers["Preference-Applied"] == "count=planned"
    estimated = api.post("/rpc/many_cards", params={"limit": "1"},
                         headers={"Prefer": "count=estimated"})
    assert estimated.headers["Content-Range"] == "0-0/5"  # exact below max_rows


def test_csv_of_a_function_returning_rows_and_406_for_a_scalar(api: httpx.Client) -> None:
    rows = api.post("/rpc/search_cards", json={"q": "cups"}, params={"select": "id,name"},
                    headers={"Accept": "text/csv"})
    # Record text, as PostgREST sends it: a value with a space is quoted.
    assert rows.text == 'id,name\n3,"Ace of Cups"\n4,"Two of Cups"'
    scalar = api.post("/rpc/card_count", headers={"Accept": "text/csv"})
    assert (scalar.status_code, scalar.json()["code"]) == (406, "PGRST107")
