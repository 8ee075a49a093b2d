"""Backups are private, whole or absent, and say which role PostgreSQL needs under forced RLS.

On the real PostgreSQL server, with a non-superuser owner like production's (the tests' usual
owner is the superuser, which row-level security never binds).
"""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

from apps.cli.main import main
from recon.db import migrate
from recon.db.backup import BackupError, backup_database
from recon.db.engine import make_engine
from recon.db.tenancy import admin_session
from recon.tenants import TenantSettings, add_tenant
from tests.conftest import _pg_conninfo
from tests.integration.test_db_roles import OwnedDatabase, _login_role, _url, owned_database

__all__ = ["owned_database"]  # the fixture, shared with the roles tests


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _restored_data(dump: Path, table: str) -> str:
    """The COPY data of one table in a custom-format dump."""
    return subprocess.run(
        ["pg_restore", "--data-only", f"--table={table}", "--file=-", str(dump)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _add_tenant(engine: Engine, tenant_id: str) -> None:
    with admin_session(engine) as session:
        add_tenant(session, tenant_id, "Acme", TenantSettings(), actor="test")


def test_sqlite_database_and_its_backup_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "recon.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    _add_tenant(engine, "acme")
    assert _mode(path) == 0o600
    assert all(_mode(p) == 0o600 for p in path.parent.glob("recon.db-*"))  # -wal, -shm
    target = backup_database(engine, tmp_path / "backups" / "copy.sqlite3")
    engine.dispose()
    assert _mode(target) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.sqlite3"]
    copy = make_engine(f"sqlite:///{target}")
    assert migrate.current_revision(copy) == migrate.schema_status(copy).head
    copy.dispose()


def test_cli_backup_of_sqlite_is_private(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RECON_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "backup", "--out", str(tmp_path / "out" / "x.sqlite3")]) == 0
    assert _mode(tmp_path / "out" / "x.sqlite3") == 0o600
    assert _mode(tmp_path / "x.db") == 0o600


@pytest.mark.postgres
def test_superuser_backup_is_private_and_whole(pg_owner_engine: Engine, tmp_path: Path) -> None:
    _add_tenant(pg_owner_engine, "acme")
    target = backup_database(pg_owner_engine, tmp_path / "pg.dump")
    assert _mode(target) == 0o600
    assert target.read_bytes().startswith(b"PGDMP")
    assert [p.name for p in tmp_path.iterdir()] == ["pg.dump"]
    assert "acme" in _restored_data(target, "tenants")  # rows, not just the schema


@pytest.mark.postgres
def test_non_superuser_owner_is_told_which_role_a_backup_needs(
    owned_database: OwnedDatabase, tmp_path: Path
) -> None:
    """Forced RLS binds the owner: pg_dump would stop part-way (or, with --enable-row-security,
    silently dump no rows), so the backup is refused before anything is written."""
    engine = make_engine(owned_database.owner_url)
    try:
        with pytest.raises(BackupError, match="BYPASSRLS") as refused:
            backup_database(engine, tmp_path / "backups" / "owner.dump")
    finally:
        engine.dispose()
    assert owned_database.owner in str(refused.value)
    assert not (tmp_path / "backups").exists()  # refused before anything was written


@pytest.mark.postgres
def test_a_bypassrls_member_of_the_owner_can_back_up(
    owned_database: OwnedDatabase, tmp_path: Path
) -> None:
    db = owned_database
    with psycopg.connect(_pg_conninfo(db.name), autocommit=True) as conn:  # rows RLS guards
        conn.execute(
            "INSERT INTO tenants (id, name, active, settings) VALUES ('acme', 'Acme', true, '{}')"
        )
        conn.execute(
            "INSERT INTO watermarks (provider, account_ref, dataset, loaded_through, updated_at,"
            " tenant_id) VALUES ('stripe', 'acct-guarded', 'payouts', '2026-10-31', now(), 'acme')"
        )
    with _login_role(db.name, "NOSUPERUSER BYPASSRLS", db.owner) as backup_role:
        engine = make_engine(_url(backup_role, db.name))
        try:
            target = backup_database(engine, tmp_path / "bypass.dump")
        finally:
            engine.dispose()
    assert _mode(target) == 0o600 and target.read_bytes().startswith(b"PGDMP")
    assert "acct-guarded" in _restored_data(target, "watermarks")


@pytest.mark.postgres
def test_a_failing_pg_dump_leaves_no_file(pg_owner_engine: Engine, tmp_path: Path) -> None:
    """A role that passes the RLS check but may not read every table: pg_dump fails part-way."""
    database = pg_owner_engine.url.database
    assert database is not None
    with _login_role(database, "NOSUPERUSER BYPASSRLS") as reader:
        with psycopg.connect(_pg_conninfo(database), autocommit=True) as conn:
            conn.execute(
                sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(reader))
            )
            conn.execute(sql.SQL("GRANT SELECT ON tenants TO {}").format(sql.Identifier(reader)))
        engine = make_engine(_url(reader, database))
        try:
            with pytest.raises(BackupError, match="pg_dump failed"):
                backup_database(engine, tmp_path / "out" / "partial.dump")
        finally:
            engine.dispose()
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.postgres
def test_cli_backup_as_the_owner_is_one_sentence_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    owned_database: OwnedDatabase,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("RECON_DATABASE_URL", owned_database.owner_url)
    assert main(["db", "backup"]) == BackupError.exit_code
    err = capsys.readouterr().err
    assert "BYPASSRLS" in err and owned_database.owner in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "var" / "backups").exists()


@pytest.mark.postgres
def test_doctor_warns_when_the_migration_role_cannot_back_up(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    owned_database: OwnedDatabase,
) -> None:
    db = owned_database
    monkeypatch.setenv("COLUMNS", "400")  # one table row per line
    monkeypatch.setenv("RECON_MIGRATION_DATABASE_URL", db.owner_url)
    with _login_role(db.name, "NOSUPERUSER NOBYPASSRLS", "recon_app") as app_role:
        monkeypatch.setenv("RECON_DATABASE_URL", _url(app_role, db.name))
        assert main(["doctor"]) == 0
    lines = capsys.readouterr().out.splitlines()
    backups = next(line for line in lines if "database backups" in line)
    assert "warn" in backups and "BYPASSRLS" in backups and db.owner in backups
    assert " ok " in next(line for line in lines if "database role" in line)
