"""Backups and restores keep erased accounts erased: a backup taken after an erasure restores
them erased, and one taken before is brought in line with `ops.admin reapply-erasures`."""

from __future__ import annotations

import json

from ops.admin import EXIT_OK, main
from ops.backup import restore_backup, take_backup
from tests.account.conftest import erase, occurrences, populate, sign_in
from tests.db.conftest import connect, one


def test_restores_keep_erased_accounts_erased(database_factory, tmp_path, capsys):
    from psycopg.rows import dict_row

    source = database_factory(migrate=True)
    with connect(source, row_factory=dict_row) as conn:
        person, other = sign_in(conn), sign_in(conn)
        populate(conn, person)
        populate(conn, other)
        before = take_backup(source, tmp_path / "before", name="before")
        erase(conn, person.id)
        after = take_backup(source, tmp_path / "after", name="after")

    restored_after = database_factory(migrate=False)
    restore_backup(after, restored_after)
    with connect(restored_after, row_factory=dict_row) as conn:
        assert one(conn, "select erased_at is not null as e from public.users where id = %s",
                   (person.id,))["e"]
        for marker in person.markers:
            assert occurrences(conn, marker) == [], marker

    restored_before = database_factory(migrate=False)
    restore_backup(before, restored_before)
    with connect(restored_before, row_factory=dict_row) as conn:
        assert occurrences(conn, person.email)  # the older backup still has the person
    args = ["--database-url", restored_before, "--json", "--operator", "alice",
            "--reason", "restored an older backup", "reapply-erasures", "--from", source]
    assert main(args) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {
        "erasures": 1, "applied": 1, "already_erased": 0, "unknown_users": 0}
    assert main(args) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["already_erased"] == 1
    with connect(restored_before, row_factory=dict_row) as conn:
        for marker in person.markers:
            assert occurrences(conn, marker) == [], marker
        assert occurrences(conn, other.email)
        assert conn.execute("select * from public.wallet_audit()").fetchall() == []
