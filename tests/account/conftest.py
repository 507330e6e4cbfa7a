"""Fixtures of the account tests: a database of their own, users with data in every table that
holds anything about a user, and the calls the functions make, as the roles that make them."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from tests.db.conftest import connect, one
from tests.money.conftest import apply_event, begin_purchase
from tests.money.events import StripePayment


@pytest.fixture(scope="package")
def account_db(database_factory: Any) -> str:
    return database_factory(migrate=True)


@pytest.fixture
def conn(account_db: str) -> Iterator[psycopg.Connection[Any]]:
    """A superuser connection; every wallet still adds up after each test."""
    with connect(account_db, row_factory=dict_row) as c:
        yield c
        assert c.execute("select * from public.wallet_audit()").fetchall() == []


@dataclass
class Person:
    """A user and the personal data they gave, to be looked for after an erasure."""

    id: uuid.UUID
    tag: str
    email: str
    name: str
    subject: str
    question_word: str
    picture_url: str
    payment: StripePayment | None = None

    @property
    def markers(self) -> list[str]:
        return [self.email, self.name, self.subject, self.question_word, self.picture_url]


def as_service(conn: psycopg.Connection[Any], sql: str, params: Any = ()) -> Any:
    """One statement as the service role (how the functions call their SQL), committed."""
    with conn.transaction():
        conn.execute("set local role service_role")
        return one(conn, sql, params)


def sign_in(conn: psycopg.Connection[Any], tag: str | None = None) -> Person:
    tag = tag or secrets.token_hex(5)
    person = Person(
        id=uuid.UUID(int=0), tag=tag, email=f"mail{tag}@example.com", name=f"Name{tag}",
        subject=f"subject{tag}", question_word=f"worry{tag}",
        picture_url=f"https://pics.example.com/{tag}.png")
    row = as_service(conn, "select public.upsert_user_from_identity(%s, %s, %s, true, %s, %s) as r",
                     ("custom", person.subject, person.email, person.name, person.picture_url))
    person.id = uuid.UUID(row["r"]["user"]["id"])
    return person


def erase(conn: psycopg.Connection[Any], user_id: uuid.UUID, by: str = "self") -> dict[str, Any]:
    return dict(as_service(conn, "select public.erase_account(%s, %s) as r", (user_id, by))["r"])


def create_reading(conn: psycopg.Connection[Any], person: Person, key: str | None = None
                   ) -> dict[str, Any]:
    return dict(as_service(
        conn, "select public.create_reading_job(%s, %s, 'hash', %s, 3, 'en', 100) as r",
        (person.id, key or secrets.token_hex(8),
         f"Will my {person.question_word} about work pass?"))["r"])


def pay(conn: psycopg.Connection[Any], person: Person, package: str = "basic") -> StripePayment:
    """A payment that succeeded at Stripe and whose webhook was applied."""
    payment = begin_purchase(conn, person.id, package)
    stripe_payment = StripePayment(uuid.UUID(payment["id"]), int(payment["amount"]))
    assert apply_event(conn, stripe_payment.succeeded())["result"] == "settled"
    return stripe_payment


def populate(conn: psycopg.Connection[Any], person: Person, inviter: Person | None = None) -> None:
    """Rows about `person` in every table that holds any: identities, Stripe Customer, saved
    card, SetupIntent record, invite (as invitee of `inviter`), a paid payment and its ledger
    rows, a refund and a dispute of it (their Stripe objects carrying the person's email and
    name, as a PromptPay refund's and a dispute's evidence do), a queued reading, a finished
    reading with its attempt."""
    if inviter is not None:
        code = one(conn, "select invite_code from public.users where id = %s",
                   (inviter.id,))["invite_code"]
        as_service(conn, "select public.redeem_invite(%s, %s) as r", (person.id, code))
    customer = f"cus_{person.tag}"
    conn.execute("insert into public.stripe_customers (user_id, stripe_customer_id)"
                 " values (%s, %s)", (person.id, customer))
    conn.execute(
        "insert into public.user_payment_methods (user_id, stripe_payment_method_id,"
        " stripe_customer_id, brand, last4, exp_month, exp_year, is_default)"
        " values (%s, %s, %s, 'visa', '4242', 12, 2031, true)",
        (person.id, f"pm_{person.tag}", customer))
    conn.execute("insert into private.payment_method_setups (user_id, idempotency_key,"
                 " stripe_setup_intent_id) values (%s, %s, %s)",
                 (person.id, f"key-{person.tag}", f"seti_{person.tag}"))
    person.payment = pay(conn, person)
    refund = person.payment.refund_event("refund.created", f"re_{person.tag}", 100, "pending")
    refund["data"]["object"]["instructions_email"] = person.email
    assert apply_event(conn, refund)["result"] == "refund_pending"
    dispute = person.payment.dispute_event("charge.dispute.created", f"dp_{person.tag}", 100,
                                           "needs_response")
    dispute["data"]["object"]["evidence"] = {"customer_email_address": person.email,
                                             "customer_name": person.name}
    assert apply_event(conn, dispute)["result"] == "dispute_held"
    create_reading(conn, person)
    finished = create_reading(conn, person)
    job_id = finished["job_id"]
    conn.execute(
        "insert into public.job_attempts (job_id, attempt_number, worker_id, finished_at,"
        " success, error) values (%s, 1, 'w', now(), false, %s)",
        (job_id, f"the model choked on {person.question_word}"))
    conn.execute(
        "update public.jobs set status = 'succeeded', attempts = 1, completed_at = now(),"
        " result = %s::jsonb where id = %s",
        (json.dumps({"summary": f"About {person.question_word}"}), job_id))
    conn.execute(
        "insert into public.tarot_readings (user_id, job_id, question, question_locale,"
        " card_count, cards, question_analysis, tarot_reading)"
        " select j.user_id, j.id, j.payload ->> 'question', 'en', 3, j.payload -> 'cards',"
        " %s::jsonb, %s::jsonb from public.jobs j where j.id = %s",
        (json.dumps({"keywords": [person.question_word]}),
         json.dumps({"summary": f"Your {person.question_word} ends well", "name": person.name}),
         job_id))


def text_columns(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str]]:
    """Every text-like and JSON column of every table of the product's schemas."""
    rows = conn.execute(
        "select c.table_schema, c.table_name, c.column_name from information_schema.columns c"
        " join information_schema.tables t using (table_schema, table_name)"
        " where c.table_schema in ('public', 'private') and t.table_type = 'BASE TABLE'"
        " and c.data_type in ('text', 'character varying', 'character', 'jsonb', 'json',"
        " 'ARRAY', 'USER-DEFINED')"
        " order by 1, 2, 3").fetchall()
    return [(r["table_schema"], r["table_name"], r["column_name"]) for r in rows]


def occurrences(conn: psycopg.Connection[Any], marker: str) -> list[str]:
    """`schema.table.column` of every value that contains `marker` (any case)."""
    found = []
    for schema, table, column in text_columns(conn):
        hit = conn.execute(
            sql.SQL("select exists (select 1 from {}.{} where {}::text ilike %s) as e")
            .format(sql.Identifier(schema), sql.Identifier(table),
                    sql.Identifier(column)),
            (f"%{marker}%",)).fetchone()
        if hit and hit["e"]:
            found.append(f"{schema}.{table}.{column}")
    return found


@pytest.fixture(scope="package")
def stack(database_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The local stack with the real handlers (account included) and the Stripe stand-in."""
    from tests.money.stack import money_stack

    with money_stack(database_factory(migrate=True), tmp_path_factory.mktemp("account")) as s:
        yield s
