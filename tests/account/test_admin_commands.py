"""`ops.admin export-user` and `ops.admin erase-user`: the same SQL as the account function, for
requests that arrive by e-mail, with the operator and the reason recorded."""

from __future__ import annotations

import json

from ops.admin import EXIT_ERROR, EXIT_OK, main
from tests.account.conftest import occurrences, populate, sign_in
from tests.db.conftest import one

OPERATOR = ["--operator", "alice", "--reason", "request by e-mail"]


def test_export_user_runs_the_export_as_that_user(conn, account_db, tmp_path, capsys):
    other, person = sign_in(conn), sign_in(conn)
    populate(conn, other)
    populate(conn, person, inviter=other)
    out = tmp_path / "export.json"
    assert main(["--database-url", account_db, *OPERATOR, "export-user", str(person.id),
                 "--out", str(out)]) == EXIT_OK
    document = json.loads(out.read_text("utf-8"))
    assert document["profile"]["email"] == person.email
    assert len(document["payments"]) == 1 and len(document["jobs"]) == 2
    assert other.email not in out.read_text("utf-8")
    assert json.loads(capsys.readouterr().out)["written"] == str(out)
    assert main(["--database-url", account_db, *OPERATOR, "export-user",
                 str(person.id)]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["user_id"] == str(person.id)


def test_erase_user_records_the_operator_and_is_idempotent(conn, account_db, capsys):
    person = sign_in(conn)
    populate(conn, person)
    args = ["--database-url", account_db, "--json", "--operator", "alice",
            "--reason", "request by e-mail, ticket 42", "erase-user", str(person.id)]
    assert main(args) == EXIT_OK
    first = json.loads(capsys.readouterr().out)
    assert first["deleted"] and not first["already_erased"] and first["refunded_jobs"] == 1
    assert main(args) == EXIT_OK
    second = json.loads(capsys.readouterr().out)
    assert second["already_erased"] and second["erased_at"] == first["erased_at"]
    row = one(conn, "select requested_by, reason, cleanup_done_at from private.account_erasures"
                    " where user_id = %s", (person.id,))
    assert (row["requested_by"], row["reason"]) == ("operator:alice",
                                                    "request by e-mail, ticket 42")
    assert row["cleanup_done_at"] is None  # left due for the consumer's sweep
    for marker in person.markers:
        assert occurrences(conn, marker) == [], marker


def test_erase_user_needs_an_operator_and_a_known_user(conn, account_db, capsys, monkeypatch):
    monkeypatch.delenv("MIMIVIBE_OPERATOR", raising=False)
    person = sign_in(conn)
    assert main(["--database-url", account_db, "--reason", "x", "erase-user",
                 str(person.id)]) == EXIT_ERROR
    assert "--operator" in capsys.readouterr().err
    assert one(conn, "select erased_at from public.users where id = %s",
               (person.id,))["erased_at"] is None
    assert main(["--database-url", account_db, "--operator", "a", "--reason", "x",
                 "erase-user", "00000000-0000-0000-0000-000000000001"]) == EXIT_ERROR
    assert "not_found" in capsys.readouterr().err
    assert main(["--database-url", account_db, *OPERATOR, "export-user",
                 "00000000-0000-0000-0000-000000000001"]) == EXIT_ERROR
