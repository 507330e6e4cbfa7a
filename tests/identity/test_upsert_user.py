"""`public.upsert_user_from_identity`: the sign-in upsert, run as service_role on real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from tests.identity.sql import first_row, scalar

CALL = (
    "select public.upsert_user_from_identity("
    "p_provider => %(provider)s, p_external_id => %(external_id)s, p_email => %(email)s,"
    " p_email_verified => %(verified)s, p_name => %(name)s, p_picture_url => %(picture)s,"
    " p_fallback_name => %(fallback_name)s, p_fallback_picture_url => %(fallback_picture)s)"
)


@pytest.fixture()
def db(migrated_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        yield conn


def sign_in(conn: psycopg.Connection, provider: str = "auth0", external_id: str | None = None,
            email: str | None = None, verified: bool = False, name: str | None = None,
            picture: str | None = None, fallback_name: str | None = None,
            fallback_picture: str | None = None, role: str = "service_role") -> dict[str, Any]:
    params = {
        "provider": provider, "external_id": external_id or uuid.uuid4().hex, "email": email,
        "verified": verified, "name": name, "picture": picture, "fallback_name": fallback_name,
        "fallback_picture": fallback_picture,
    }
    with conn.transaction():
        conn.execute(f"set local role {role}")
        row = first_row(conn, CALL, params)
    assert row is not None
    return row[0]


def unique_email() -> str:
    return f"User.{uuid.uuid4().hex[:10]}@Example.test"


def test_first_sign_in_creates_the_user_with_an_invite_code(db):
    email = unique_email()
    result = sign_in(db, "clerk", "user_1" + uuid.uuid4().hex, email, True, "Nok",
                     "https://img.test/n.png")

    user = result["user"]
    assert result["created"] is True and result["linked"] is False
    assert user["email"] == email and user["name"] == "Nok"
    assert user["picture_url"] == "https://img.test/n.png"
    assert user["star_balance"] == 0 and user["coin_balance"] == 0
    assert user["tier"] == "bronze" and user["total_invites"] == 0 and user["invited_by"] is None
    assert len(user["invite_code"]) == 8
    identities = db.execute(
        "select provider, email, email_verified from public.user_identities where user_id = %s",
        (user["id"],),
    ).fetchall()
    assert identities == [("clerk", email, True)]


def test_next_sign_in_keeps_the_user_and_invite_code_and_refreshes_profile(db):
    external_id = uuid.uuid4().hex
    first = sign_in(db, "firebase", external_id, name="Old", picture="https://img.test/old.png")
    before = scalar(db, "select last_login_at from public.users where id = %s",
                        (first["user"]["id"],))

    email = unique_email()
    again = sign_in(db, "firebase", external_id, email, True, "New", None)

    assert again["created"] is False
    assert again["user"]["id"] == first["user"]["id"]
    assert again["user"]["invite_code"] == first["user"]["invite_code"]
    assert again["user"]["name"] == "New"
    assert again["user"]["picture_url"] == "https://img.test/old.png"
    assert again["user"]["email"] == email
    after = scalar(db, "select last_login_at from public.users where id = %s",
                       (first["user"]["id"],))
    assert after > before


def test_fallback_profile_only_fills_empty_fields(db):
    external_id = uuid.uuid4().hex
    created = sign_in(db, "custom", external_id, fallback_name="From body",
                      fallback_picture="https://img.test/body.png")
    assert created["user"]["name"] == "From body"
    assert created["user"]["picture_url"] == "https://img.test/body.png"

    again = sign_in(db, "custom", external_id, fallback_name="Other body")
    assert again["user"]["name"] == "From body"


def test_verified_email_of_another_provider_links_the_identity(db):
    email = unique_email()
    original = sign_in(db, "auth0", uuid.uuid4().hex, email, True, "Ploy")

    linked = sign_in(db, "firebase", uuid.uuid4().hex, email.lower(), True)

    assert linked["linked"] is True and linked["created"] is False
    assert linked["user"]["id"] == original["user"]["id"]
    providers = db.execute(
        "select provider from public.user_identities where user_id = %s order by provider",
        (original["user"]["id"],),
    ).fetchall()
    assert providers == [("auth0",), ("firebase",)]


def test_unverified_email_of_another_user_is_an_email_conflict(db):
    email = unique_email()
    sign_in(db, "auth0", uuid.uuid4().hex, email, True)
    external_id = uuid.uuid4().hex

    with pytest.raises(psycopg.Error) as caught:
        sign_in(db, "clerk", external_id, email.upper(), False)

    assert caught.value.sqlstate == "MV020"
    assert scalar(db, "select count(*) from public.user_identities where external_id = %s",
                      (external_id,)) == 0


def test_unverified_email_is_not_given_to_the_user(db):
    email = unique_email()
    squatter = sign_in(db, "custom", uuid.uuid4().hex, email, False)
    assert squatter["user"]["email"] is None

    # The real owner signs in with a verified address: a new account, not the squatter's.
    owner = sign_in(db, "auth0", uuid.uuid4().hex, email, True)
    assert owner["created"] is True
    assert owner["user"]["id"] != squatter["user"]["id"]
    assert owner["user"]["email"] == email


def test_invalid_provider_or_external_id_is_a_validation_error(db):
    for provider, external_id in (("admin", "x"), ("auth0", "x" * 256)):
        with pytest.raises(psycopg.Error) as caught:
            sign_in(db, provider, external_id)
        assert caught.value.sqlstate == "MV006"


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_only_service_role_may_call_it(db, role):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        sign_in(db, role=role)


def test_concurrent_first_sign_ins_create_one_user(migrated_db):
    external_id = uuid.uuid4().hex
    email = unique_email()

    def once(_: int) -> str:
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            return sign_in(conn, "clerk", external_id, email, True)["user"]["id"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = set(pool.map(once, range(6)))

    assert len(ids) == 1
    with psycopg.connect(migrated_db) as conn:
        count = scalar(conn, "select count(*) from public.users where lower(email) = lower(%s)",
                             (email,))
    assert count == 1


def test_concurrent_providers_with_one_verified_email_share_one_user(migrated_db):
    email = unique_email()

    def once(provider: str) -> str:
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            return sign_in(conn, provider, uuid.uuid4().hex, email, True)["user"]["id"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = set(pool.map(once, ["clerk", "auth0", "firebase", "custom"]))

    assert len(ids) == 1


