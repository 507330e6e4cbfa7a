"""Gateway contract: resource embedding (many-to-one, one-to-many, one-to-one, hints, !inner,
spread, nested, embedded filters/order/limit, is.null on an embed, embedding on RPC results),
each embedded table read under its own RLS, in one statement."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from postgrest import SyncPostgrestClient

from tests.devstack.conftest import (
    ALICE,
    BOB,
    authorized_client,
    database_with,
    gateway_serving,
    mint,
)

EMBED_SQL = """
create table public.people (
  id uuid primary key,
  name text not null,
  referrer_id uuid references public.people (id)
);
create table public.orders (
  id int primary key,
  owner_id uuid not null references public.people (id),
  status text not null,
  amount int not null,
  placed_at timestamptz not null
);
create table public.receipts (
  id int primary key,
  order_id int not null unique references public.orders (id),
  code text not null
);
-- Two keys to orders: embedding orders from the ledger needs a hint.
create table public.ledger (
  id int primary key,
  owner_id uuid not null references public.people (id),
  order_id int references public.orders (id),
  refund_of_id int constraint ledger_refund_of_fkey references public.orders (id),
  amount int not null
);
create table public.labels (id int primary key, name text not null);
-- A junction: both keys in its primary key, so people and labels are many-to-many.
create table public.person_labels (
  person_id uuid references public.people (id),
  label_id int references public.labels (id),
  primary key (person_id, label_id)
);
insert into public.labels values (1, 'seeker'), (2, 'regular'), (3, 'new');

alter table public.people enable row level security;
alter table public.orders enable row level security;
alter table public.receipts enable row level security;
alter table public.ledger enable row level security;
-- One's own profile and the profile of whoever referred one.
create function public.my_referrer() returns uuid language sql stable security definer
set search_path = '' as $$
  select referrer_id from public.people where id = (select auth.uid()) $$;
create policy people_read on public.people for select to authenticated using (
  id = (select auth.uid()) or id = (select public.my_referrer()));
create policy orders_read on public.orders for select to authenticated
  using (owner_id = (select auth.uid()));
-- Receipts of cancelled orders are never shown to anyone.
create policy receipts_read on public.receipts for select to authenticated
  using (code not like 'void-%');
create policy ledger_read on public.ledger for select to authenticated
  using (owner_id = (select auth.uid()));

insert into public.people values
  ('00000000-0000-4000-8000-00000000a11c', 'Alice', null),
  ('00000000-0000-4000-8000-000000000b0b', 'Bob', '00000000-0000-4000-8000-00000000a11c');
insert into public.orders values
  (1, '00000000-0000-4000-8000-00000000a11c', 'paid', 100, '2026-01-01T00:00:00Z'),
  (2, '00000000-0000-4000-8000-00000000a11c', 'refunded', 200, '2026-01-02T00:00:00Z'),
  (3, '00000000-0000-4000-8000-00000000a11c', 'pending', 300, '2026-01-03T00:00:00Z'),
  (4, '00000000-0000-4000-8000-000000000b0b', 'paid', 400, '2026-01-04T00:00:00Z');
insert into public.receipts values (1, 1, 'R-1'), (2, 2, 'void-2'), (4, 4, 'R-4');
insert into public.ledger values
  (1, '00000000-0000-4000-8000-00000000a11c', 1, null, 100),
  (2, '00000000-0000-4000-8000-00000000a11c', 2, null, 200),
  (3, '00000000-0000-4000-8000-00000000a11c', null, 2, -200),
  (4, '00000000-0000-4000-8000-00000000a11c', null, null, 5),
  (5, '00000000-0000-4000-8000-000000000b0b', 4, null, 400);

insert into public.person_labels values
  ('00000000-0000-4000-8000-00000000a11c', 1), ('00000000-0000-4000-8000-00000000a11c', 2),
  ('00000000-0000-4000-8000-000000000b0b', 3);

-- Computed relationships and a computed field: functions of a row.
create function public.big_orders(public.people) returns setof public.orders
language sql stable as $$ select * from public.orders where owner_id = $1.id and amount >= 200 $$;
create function public.first_order(public.people) returns public.orders
language sql stable as $$
  select * from public.orders where owner_id = $1.id order by placed_at limit 1 $$;
create function public.order_label(public.orders) returns text
language sql stable as $$ select $1.status || ':' || $1.amount $$;

-- Views carry the keys of the base columns they show under the same name.
create view public.open_orders with (security_invoker = true) as
  select id, owner_id, status, amount from public.orders where status <> 'refunded';
create view public.order_totals with (security_invoker = true) as
  select owner_id as person, sum(amount) as total from public.orders group by owner_id;

create function public.my_orders() returns setof public.orders
language sql stable as $$ select * from public.orders order by id $$;
"""


@pytest.fixture(scope="module")
def embed_db(database_factory: Any) -> str:
    return database_with(database_factory, EMBED_SQL)


@pytest.fixture(scope="module")
def embed_url(embed_db: str) -> Iterator[str]:
    with gateway_serving(embed_db, "gateway-embed") as url:
        yield url


@pytest.fixture()
def api(embed_url: str) -> Iterator[httpx.Client]:
    with authorized_client(embed_url) as client:
        yield client


def get(api: httpx.Client, path: str, **params: str) -> Any:
    r = api.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_many_to_one_embeds_an_object_or_null(api: httpx.Client) -> None:
    rows = get(api, "/ledger", select="id,amount,orders!order_id(status)", order="id")
    assert rows == [
        {"id": 1, "amount": 100, "orders": {"status": "paid"}},
        {"id": 2, "amount": 200, "orders": {"status": "refunded"}},
        {"id": 3, "amount": -200, "orders": None},
        {"id": 4, "amount": 5, "orders": None},
    ]


def test_one_to_many_embeds_an_array_under_its_own_rls(api: httpx.Client) -> None:
    people = get(api, "/people", select="name,orders(id)", order="name")
    # Alice sees her own orders; Bob's profile is hidden from her by the people policy.
    assert people == [{"name": "Alice", "orders": [{"id": 1}, {"id": 2}, {"id": 3}]}]
    bob = httpx.get(api.base_url.join("/rest/v1/people"),
                    params={"select": "name,orders(id)", "order": "name"},
                    headers={"Authorization": f"Bearer {mint(sub=BOB)}"}).json()
    # Bob reads his referrer's profile, but her orders stay hers.
    assert bob == [{"name": "Alice", "orders": []}, {"name": "Bob", "orders": [{"id": 4}]}]


def test_one_to_one_is_an_object_and_rls_of_the_embedded_table_applies(api: httpx.Client
                                                                         ) -> None:
    rows = get(api, "/orders", select="id,receipts(code)", order="id")
    assert rows == [{"id": 1, "receipts": {"code": "R-1"}}, {"id": 2, "receipts": None},
                    {"id": 3, "receipts": None}]
    back = get(api, "/receipts", select="code,orders(status)", order="id")
    # Bob's order is hidden by orders' policy even though his receipt is readable.
    assert back == [{"code": "R-1", "orders": {"status": "paid"}},
                    {"code": "R-4", "orders": None}]


def test_ambiguous_relationship_is_300_pgrst201_and_hints_resolve_it(api: httpx.Client) -> None:
    r = api.get("/ledger", params={"select": "*,orders(*)"})
    assert r.status_code == 300
    body = r.json()
    assert body["code"] == "PGRST201"
    assert body["message"] == ("Could not embed because more than one relationship was found "
                               "for 'ledger' and 'orders'")
    assert {d["relationship"] for d in body["details"]} == {
        "ledger_order_id_fkey using ledger(order_id) and orders(id)",
        "ledger_refund_of_fkey using ledger(refund_of_id) and orders(id)"}
    assert {d["cardinality"] for d in body["details"]} == {"many-to-one"}
    assert "'orders!ledger_refund_of_fkey'" in body["hint"]
    by_fk = get(api, "/ledger", select="id,refund:orders!ledger_refund_of_fkey(id,amount)",
                id="eq.3")
    assert by_fk == [{"id": 3, "refund": {"id": 2, "amount": 200}}]
    by_column = get(api, "/ledger", select="id,orders!refund_of_id(id)", id="eq.3")
    assert by_column == [{"id": 3, "orders": {"id": 2}}]


def test_no_relationship_is_400_pgrst200(api: httpx.Client) -> None:
    r = api.get("/orders", params={"select": "*,labels(*)"})
    assert r.status_code == 400
    assert r.json()["code"] == "PGRST200"
    assert r.json()["message"] == ("Could not find a relationship between 'orders' and "
                                   "'labels' in the schema cache")
    typo = api.get("/orders", params={"select": "*,receipt(*)"}).json()
    assert typo["hint"] == "Perhaps you meant 'receipts' instead of 'receipt'."
    bad_hint = api.get("/ledger", params={"select": "*,orders!nope(*)"})
    assert bad_hint.status_code == 400
    assert "using the hint 'nope'" in bad_hint.json()["details"]


def test_inner_join_filters_parents_by_embedded_filters(api: httpx.Client) -> None:
    left = get(api, "/people", select="name,orders(id)", **{"orders.status": "eq.pending"})
    assert left == [{"name": "Alice", "orders": [{"id": 3}]}]
    r = api.get("/ledger", params={"select": "id,orders!order_id!inner(status)",
                                   "orders.status": "eq.paid"},
                headers={"Prefer": "count=exact"})
    assert r.json() == [{"id": 1, "orders": {"status": "paid"}}]
    assert r.headers["Content-Range"] == "0-0/1"
    # An empty embed filters without showing anything.
    hidden = get(api, "/ledger", select="id,orders!order_id!inner()", order="id")
    assert hidden == [{"id": 1}, {"id": 2}]


def test_is_null_on_an_embed_selects_parents_without_related_rows(api: httpx.Client) -> None:
    orphans = get(api, "/ledger", select="id,orders!order_id(id)", orders="is.null",
                  order="id")
    assert [r["id"] for r in orphans] == [3, 4]
    linked = get(api, "/ledger", select="id,orders!order_id(id)", orders="not.is.null",
                 order="id")
    assert [r["id"] for r in linked] == [1, 2]
    bad = api.get("/ledger", params={"select": "id,orders!order_id(id)", "orders": "eq.1"})
    assert (bad.status_code, bad.json()["code"]) == (400, "PGRST120")


def test_embedded_order_limit_and_logic(api: httpx.Client) -> None:
    rows = get(api, "/people", select="name,latest:orders(id,placed_at)",
               **{"latest.order": "placed_at.desc", "latest.limit": "2"})
    assert [o["id"] for o in rows[0]["latest"]] == [3, 2]
    rows = get(api, "/people", select="name,orders(id)",
               **{"orders.or": "(status.eq.paid,amount.gt.250)", "orders.order": "id.desc"})
    assert rows[0]["orders"] == [{"id": 3}, {"id": 1}]
    unknown = api.get("/people", params={"select": "name", "orders.status": "eq.paid"})
    assert (unknown.status_code, unknown.json()["code"]) == (400, "PGRST108")
    aliased = api.get("/people", params={"select": "name,mine:orders(id)",
                                         "orders.status": "eq.paid"}).json()
    assert (aliased["code"], aliased["hint"]) == (
        "PGRST108", "Change 'orders' to 'mine' in filters, orders or limits.")


def test_nested_embedding_and_spread(api: httpx.Client) -> None:
    rows = get(api, "/people", select="name,orders(id,receipts(code))",
               **{"orders.order": "id"})
    assert rows[0]["orders"] == [{"id": 1, "receipts": {"code": "R-1"}},
                                 {"id": 2, "receipts": None}, {"id": 3, "receipts": None}]
    deep = get(api, "/people", select="name,orders!inner(id,receipts!inner(code))",
               **{"orders.receipts.code": "eq.R-1"})
    assert deep == [{"name": "Alice", "orders": [{"id": 1, "receipts": {"code": "R-1"}}]}]
    spread = get(api, "/ledger", select="id,...orders!order_id(status,total:amount)", order="id")
    assert spread[0] == {"id": 1, "status": "paid", "total": 100}
    assert spread[3] == {"id": 4, "status": None, "total": None}
    many = get(api, "/people", select="name,...orders(id)", **{"orders.order": "id"})
    assert many == [{"name": "Alice", "id": [1, 2, 3]}]


def test_self_reference_embeds_the_children(embed_url: str) -> None:
    rows = httpx.get(embed_url + "/people", params={"select": "name,people(name)",
                                                    "order": "name"},
                     headers={"Authorization": f"Bearer {mint(sub=BOB)}"}).json()
    assert rows == [{"name": "Alice", "people": [{"name": "Bob"}]},
                    {"name": "Bob", "people": []}]


def test_embedding_on_rpc_results_with_filters(api: httpx.Client) -> None:
    for method in ("GET", "POST"):
        r = api.request(method, "/rpc/my_orders",
                        params={"select": "id,receipts(code)", "status": "eq.paid"})
        assert r.status_code == 200, r.text
        assert r.json() == [{"id": 1, "receipts": {"code": "R-1"}}]
    scalar = api.post("/rpc/my_referrer", params={"select": "*,orders(*)"})
    assert (scalar.status_code, scalar.json()["code"]) == (400, "PGRST200")
    assert scalar.json()["message"] == ("Could not find a relationship between 'my_referrer' "
                                        "and 'orders' in the schema cache")


def test_embedding_through_the_python_client(embed_url: str) -> None:
    token = mint()
    with SyncPostgrestClient(embed_url, headers={"Authorization": f"Bearer {token}"}) as client:
        rows: Any = (client.from_("ledger").select("id, orders!order_id!inner(status)")
                     .eq("orders.status", "refunded").execute().data)
    assert rows == [{"id": 2, "orders": {"status": "refunded"}}]
    assert ALICE  # the token's subject owns every row above


def test_one_to_many_with_a_column_hint(api: httpx.Client) -> None:
    rows = get(api, "/orders", select="id,ledger!order_id(id)", order="id")
    assert [[e["id"] for e in o["ledger"]] for o in rows] == [[1], [2], []]
    refunds = get(api, "/orders", select="id,ledger!ledger_refund_of_fkey(amount)", id="eq.2")
    assert refunds == [{"id": 2, "ledger": [{"amount": -200}]}]


def test_written_rows_come_back_with_their_embeds(embed_url: str, embed_db: str) -> None:
    with psycopg.connect(embed_db, autocommit=True) as conn:
        conn.execute("grant insert, update, delete on public.ledger to authenticated")
        conn.execute("create policy ledger_insert on public.ledger for insert to authenticated "
                     "with check (owner_id = (select auth.uid()))")
        conn.execute("create policy ledger_update on public.ledger for update to authenticated "
                     "using (owner_id = (select auth.uid()))")
        conn.execute("create policy ledger_delete on public.ledger for delete to authenticated "
                     "using (owner_id = (select auth.uid()))")
    headers = {"Authorization": f"Bearer {mint()}", "Prefer": "return=representation"}
    created = httpx.post(embed_url + "/ledger",
                         params={"select": "id,amount,orders!order_id(status)"},
                         json={"id": 10, "owner_id": ALICE, "order_id": 3, "amount": 7},
                         headers=headers)
    assert created.status_code == 201, created.text
    assert created.json() == [{"id": 10, "amount": 7, "orders": {"status": "pending"}}]
    updated = httpx.patch(embed_url + "/ledger",
                          params={"id": "eq.10", "select": "amount,...orders!order_id(status)"},
                          json={"amount": 8},
                          headers={**headers, "Accept": "application/vnd.pgrst.object+json"})
    assert updated.json() == {"amount": 8, "status": "pending"}
    deleted = httpx.delete(embed_url + "/ledger",
                           params={"id": "eq.10", "select": "id,owner:people(name)"},
                           headers=headers)
    assert deleted.json() == [{"id": 10, "owner": {"name": "Alice"}}]
    flat = httpx.post(embed_url + "/ledger", params={"orders.status": "eq.paid"},
                      json={"id": 11, "owner_id": ALICE, "amount": 1},
                      headers={"Authorization": f"Bearer {mint()}"})
    assert (flat.status_code, flat.json()["code"]) == (400, "PGRST108")


def test_parents_ordered_by_a_to_one_embed_and_refused_for_to_many(api: httpx.Client) -> None:
    rows = get(api, "/ledger", select="id,orders!order_id(amount)",
               order="orders(amount).desc.nullslast,id")
    assert [r["id"] for r in rows] == [2, 1, 3, 4]
    nested = get(api, "/people", select="name,orders(id,receipts(code))",
                 **{"orders.order": "receipts(code).desc.nullslast,id"})
    assert [o["id"] for o in nested[0]["orders"]] == [1, 2, 3]
    many = api.get("/people", params={"select": "name,orders(id)", "order": "orders(id)"})
    assert (many.status_code, many.json()["code"]) == (400, "PGRST118")
    assert many.json()["details"] == ("'people' and 'orders' do not form a many-to-one or "
                                      "one-to-one relationship")


def test_many_to_many_through_a_junction_table(api: httpx.Client) -> None:
    people = get(api, "/people", select="name,labels(name)", **{"labels.order": "id"})
    assert people == [{"name": "Alice", "labels": [{"name": "seeker"}, {"name": "regular"}]}]
    labels = get(api, "/labels", select="name,people!person_labels(name)", order="id")
    # Bob's row is hidden from Alice by the people policy: his label embeds no one.
    assert labels == [{"name": "seeker", "people": [{"name": "Alice"}]},
                      {"name": "regular", "people": [{"name": "Alice"}]},
                      {"name": "new", "people": []}]
    inner = get(api, "/labels", select="name,people!inner(id)", order="id")
    assert [label["name"] for label in inner] == ["seeker", "regular"]


def test_targets_named_by_key_column_or_constraint(api: httpx.Client, embed_url: str) -> None:
    by_column = get(api, "/ledger", select="id,order_id(status)", id="eq.1")
    assert by_column == [{"id": 1, "order_id": {"status": "paid"}}]
    by_constraint = get(api, "/ledger", select="id,refund:ledger_refund_of_fkey(id)", id="eq.3")
    assert by_constraint == [{"id": 3, "refund": {"id": 2}}]
    parent = httpx.get(embed_url + "/people",
                       params={"select": "name,referrer:referrer_id(name)", "order": "name"},
                       headers={"Authorization": f"Bearer {mint(sub=BOB)}"}).json()
    assert parent == [{"name": "Alice", "referrer": None}, {"name": "Bob",
                                                           "referrer": {"name": "Alice"}}]


def test_computed_relationships_and_fields(api: httpx.Client) -> None:
    rows = get(api, "/people", select="name,big_orders(id,order_label),first_order(id)",
               **{"big_orders.order": "id"})
    assert rows == [{"name": "Alice", "big_orders": [{"id": 2, "order_label": "refunded:200"},
                                                     {"id": 3, "order_label": "pending:300"}],
                     "first_order": {"id": 1}}]
    filtered = get(api, "/people", select="name,big_orders!inner(id)",
                   **{"big_orders.status": "eq.paid"})
    assert filtered == []


def test_embedding_from_and_to_views_over_keyed_columns(api: httpx.Client) -> None:
    assert get(api, "/open_orders", select="id,people(name)", order="id") == [
        {"id": 1, "people": {"name": "Alice"}}, {"id": 3, "people": {"name": "Alice"}}]
    assert get(api, "/people", select="name,open_orders(id)", **{"open_orders.order": "id"}) \
        == [{"name": "Alice", "open_orders": [{"id": 1}, {"id": 3}]}]
    assert get(api, "/open_orders", select="id,receipts(code)", order="id") == [
        {"id": 1, "receipts": {"code": "R-1"}}, {"id": 3, "receipts": None}]
    assert get(api, "/ledger", select="id,open_orders!order_id(status)", order="id") == [
        {"id": 1, "open_orders": {"status": "paid"}}, {"id": 2, "open_orders": None},
        {"id": 3, "open_orders": None}, {"id": 4, "open_orders": None}]
    renamed = api.get("/order_totals", params={"select": "person,people(name)"})
    assert (renamed.status_code, renamed.json()["code"]) == (400, "PGRST200")
