"""Backup and restore: a custom-format dump with checksum and row-count manifest, restored into
an empty database and verified (counts, wallet_audit() empty, migrations current)."""

from __future__ import annotations

import os
import stat

import psycopg
import pytest

from ops.backup import BackupError, load_manifest, main, restore_backup, take_backup, verify_backup
from tests.db.conftest import connect, credit, make_user


@pytest.fixture(scope="module")
def source(database_factory) -> str:
    url = database_factory(migrate=True)
    with connect(url) as conn:
        for stars in (3, 5, 8):
            user = make_user(conn, stars=stars, coins=100)
            credit(conn, user, "STAR", -1)
    return url


@pytest.fixture(scope="module")
def backup(source, tmp_path_factory):
    return take_backup(source, tmp_path_factory.mktemp("backup"), name="nightly")


def test_backup_writes_an_archive_with_checksum_and_row_counts(backup, source) -> None:
    manifest = load_manifest(backup)
    assert (backup.parent / "nightly.dump").stat().st_size == manifest["bytes"]
    assert len(manifest["sha256"]) == 64
    assert manifest["row_counts"]["public.users"] == 3
    assert manifest["row_counts"]["public.wallet_transactions"] == 9
    assert "supabase_migrations.schema_migrations" in manifest["row_counts"]
    assert manifest["migrations"][0].startswith("2026")


def test_archive_and_manifest_are_readable_by_their_owner_only(source, tmp_path) -> None:
    previous = os.umask(0o022)  # the usual umask, which would leave them world-readable
    try:
        manifest = take_backup(source, tmp_path / "new" / "folder", name="private")
        # A second backup over the same name keeps the mode too.
        take_backup(source, tmp_path / "new" / "folder", name="private")
    finally:
        os.umask(previous)
    archive = manifest.parent / "private.dump"
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o600
    assert stat.S_IMODE(manifest.parent.stat().st_mode) == 0o700
    assert load_manifest(manifest)["bytes"] == archive.stat().st_size


def test_round_trip_restores_every_row_and_verifies(backup, source, database_factory) -> None:
    target = database_factory(migrate=False)

    restore_backup(backup, target)
    result = verify_backup(backup, target)

    assert result.ok, result.problems
    with connect(source) as a, connect(target) as b:
        query = "select id, star_balance, coin_balance from public.users order by id"
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
        # Policies and grants came along: the ledger is still immutable after a restore.
        with pytest.raises(psycopg.Error):
            b.execute("delete from public.wallet_transactions")


def test_restore_refuses_a_database_that_is_not_empty(backup, database_factory) -> None:
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(backup, database_factory(migrate=True))


def test_restore_refuses_an_archive_whose_checksum_differs(backup, tmp_path, database_factory) -> None:
    copy = tmp_path / backup.name
    copy.write_text(backup.read_text())
    archive = (backup.parent / "nightly.dump").read_bytes()
    (tmp_path / "nightly.dump").write_bytes(archive[:-1] + bytes([archive[-1] ^ 1]))

    with pytest.raises(BackupError, match="checksum"):
        restore_backup(copy, database_factory(migrate=False))


def test_verify_reports_missing_rows_and_a_broken_wallet(backup, database_factory) -> None:
    target = database_factory(migrate=False)
    restore_backup(backup, target)
    with connect(target) as conn:
        conn.execute("update public.users set star_balance = star_balance + 1"
                     " where id = (select id from public.users limit 1)")
        conn.execute("delete from supabase_migrations.schema_migrations"
                     " where version = (select max(version) from supabase_migrations.schema_migrations)")

    result = verify_backup(backup, target)

    assert not result.ok
    assert any("wallet_audit()" in p for p in result.problems)
    assert any(p.startswith("supabase_migrations.schema_migrations") for p in result.problems)
    assert any(p.startswith("migrations not current") for p in result.problems)


def test_cli_takes_restores_and_verifies(source, database_factory, tmp_path, capsys) -> None:
    target = database_factory(migrate=False)

    assert main(["take", "--out", str(tmp_path), "--name", "cli", "--database-url", source]) == 0
    manifest = str(tmp_path / "cli.manifest.json")
    assert main(["restore", manifest, "--database-url", target]) == 0
    assert main(["verify", manifest, "--database-url", target]) == 0
    assert "verified" in capsys.readouterr().out
