"""public.export_account: run as the signed-in user, RLS decides, and the document holds exactly
that user's rows of every table about users, and nothing of anybody else."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from tests.account.conftest import Person, populate, sign_in
from tests.db.conftest import acting_as, one

# Export section -> (table, the rows of the user, as the superuser sees them).
SECTIONS = {
    "identities": ("user_identities", "select id from public.user_identities where user_id = %(u)s"),
    "payments": ("payments", "select id from public.payments where user_id = %(u)s"),
    "refunds": ("payment_refunds", "select r.id from public.payment_refunds r"
                " join public.payments p on p.id = r.payment_id where p.user_id = %(u)s"),
    "disputes": ("payment_disputes", "select d.id from public.payment_disputes d"
                 " join public.payments p on p.id = d.payment_id where p.user_id = %(u)s"),
    "ledger": ("wallet_transactions",
               "select id from public.wallet_transactions where user_id = %(u)s"),
    "readings": ("tarot_readings", "select id from public.tarot_readings where user_id = %(u)s"),
    "jobs": ("jobs", "select id from public.jobs where user_id = %(u)s"),
    "job_attempts": ("job_attempts", "select a.id from public.job_attempts a"
                     " join public.jobs j on j.id = a.job_id where j.user_id = %(u)s"),
    "invites": ("user_invites", "select id from public.user_invites"
                " where inviter_id = %(u)s or invitee_id = %(u)s"),
    "saved_cards": ("user_payment_methods",
                    "select id from public.user_payment_methods where user_id = %(u)s"),
}


def export(conn: psycopg.Connection[Any], person: Person) -> dict[str, Any]:
    with acting_as(conn, "authenticated", person.id):
        return dict(one(conn, "select public.export_account() as e")["e"])


@pytest.fixture
def pair(conn: psycopg.Connection[Any]) -> tuple[Person, Person]:
    inviter, invitee = sign_in(conn), sign_in(conn)
    populate(conn, inviter)
    populate(conn, invitee, inviter=inviter)
    return inviter, invitee


def test_every_public_table_about_users_has_its_section(conn):
    # Tables that point at users, directly or through another such table (a refund through its
    # payment, an attempt through its job).
    tables = {r["table"] for r in conn.execute(
        "with recursive about(oid) as ("
        "  select 'public.users'::regclass::oid"
        "  union select c.conrelid from pg_constraint c join about a on c.confrelid = a.oid"
        "   where c.contype = 'f' and c.connamespace = 'public'::regnamespace)"
        " select oid::regclass::text as table from about").fetchall()}
    # regclass names public tables without their schema (it is on the search path).
    covered = {table for table, _ in SECTIONS.values()} | {"users", "stripe_customers"}
    assert {"payment_refunds", "payment_disputes", "job_attempts"} <= tables
    assert tables <= covered, tables - covered


def test_export_holds_exactly_the_users_rows_of_every_table(conn, pair):
    for person in pair:
        document = export(conn, person)
        assert document["user_id"] == str(person.id)
        assert document["profile"]["id"] == str(person.id)
        assert document["profile"]["email"] == person.email
        assert document["stripe_customer"]["stripe_customer_id"] == f"cus_{person.tag}"
        for section, (_, query) in SECTIONS.items():
            expected = {str(r["id"]) for r in conn.execute(query, {"u": person.id}).fetchall()}
            assert expected, section  # every table holds something of each user
            assert {str(r["id"]) for r in document[section]} == expected, section
        assert {i["external_id"] for i in document["identities"]} == {person.subject}
        assert any(person.question_word in r["question"] for r in document["readings"])
        assert [(r["stripe_refund_id"], r["amount"], r["status"]) for r in document["refunds"]] \
            == [(f"re_{person.tag}", 100, "pending")]
        assert [(d["stripe_dispute_id"], d["status"]) for d in document["disputes"]] == [
            (f"dp_{person.tag}", "needs_response")]


def test_nothing_of_the_other_user_is_in_an_export(conn, pair):
    inviter, invitee = pair
    for me, other in ((inviter, invitee), (invitee, inviter)):
        text = json.dumps(export(conn, me))
        for marker in [*other.markers, f"cus_{other.tag}", f"pm_{other.tag}", f"re_{other.tag}",
                       f"dp_{other.tag}"]:
            assert marker not in text, marker
        other_code = one(conn, "select invite_code from public.users where id = %s",
                         (other.id,))["invite_code"]
        assert other_code not in text
        # The other party of the shared invite appears by id only.
        assert str(other.id) in text


def test_saved_cards_show_brand_last4_and_expiry_only(conn, pair):
    card = export(conn, pair[0])["saved_cards"][0]
    assert (card["brand"], card["last4"], card["exp_month"], card["exp_year"]) == (
        "visa", "4242", 12, 2031)
    assert not [key for key in card if "stripe" in key]


def test_export_needs_a_signed_in_user(conn):
    with pytest.raises(psycopg.Error) as error, acting_as(conn, "authenticated"):
        conn.execute("select public.export_account()")
    assert error.value.sqlstate == "MV005"
    with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(conn, "anon"):
        conn.execute("select public.export_account()")
