"""The application refuses, in production, a database role row-level security does not bind.

On the real PostgreSQL server: the superuser, a role with BYPASSRLS, the (non-superuser) owner of
the tables and a member of that owner are all refused; a member of `recon_app` only is accepted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

from apps.cli.main import main
from recon.db import migrate
from recon.db.engine import make_engine
from recon.db.roles import application_role_problem, check_application_role
from recon.errors import ConfigError
from tests.conftest import PG_HOST, PG_PORT, _pg_conninfo

pytestmark = pytest.mark.postgres


@dataclass
class OwnedDatabase:
    """A database migrated by a non-superuser owner role, and its URLs."""

    name: str
    owner: str
    owner_url: str


def _url(role: str, database: str) -> str:
    return f"postgresql+psycopg://{role}@{PG_HOST}:{PG_PORT}/{database}"


@contextmanager
def _login_role(database: str, options: str, *member_of: str) -> Iterator[str]:
    """A new login role (dropped afterwards), optionally a member of other roles."""
    role = f"recon_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_pg_conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN " + options).format(sql.Identifier(role)))
        for parent in member_of:
            conn.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(parent), sql.Identifier(role))
            )
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier(role)
            )
        )
    try:
        yield role
    finally:
        with psycopg.connect(_pg_conninfo(database), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with psycopg.connect(_pg_conninfo("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(
                    sql.Identifier(database), sql.Identifier(role)
                )
            )
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def owned_database(pg_database: str) -> Iterator[OwnedDatabase]:
    """`pg_database` migrated by a NOSUPERUSER NOBYPASSRLS owner (what production should use)."""
    with psycopg.connect(_pg_conninfo("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'recon_app'").fetchone()
        if not exists:
            conn.execute("CREATE ROLE recon_app NOLOGIN NOSUPERUSER NOBYPASSRLS")
    with _login_role(pg_database, "NOSUPERUSER NOBYPASSRLS") as owner:
        with psycopg.connect(_pg_conninfo(pg_database), autocommit=True) as conn:
            conn.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(sql.Identifier(owner)))
        engine = make_engine(_url(owner, pg_database))
        migrate.upgrade(engine)
        engine.dispose()
        yield OwnedDatabase(pg_database, owner, _url(owner, pg_database))


def _problem(url: str) -> str | None:
    engine = make_engine(url)
    try:
        problem = application_role_problem(engine)
    finally:
        engine.dispose()
    return None if problem is None else problem.sentence()


def test_superuser_is_refused_and_the_app_role_accepted(
    pg_owner_engine: Engine, pg_app_engine: Engine
) -> None:
    problem = application_role_problem(pg_owner_engine)
    assert problem is not None and problem.reason == "is a superuser"
    assert application_role_problem(pg_app_engine) is None
    with pytest.raises(ConfigError, match="is a superuser"):
        check_application_role(pg_owner_engine, production=True)
    check_application_role(pg_app_engine, production=True)


def test_bypassrls_role_is_refused(pg_app_url: str, pg_database: str) -> None:
    with _login_role(pg_database, "NOSUPERUSER BYPASSRLS", "recon_app") as role:
        assert "has BYPASSRLS" in (_problem(_url(role, pg_database)) or "")


def test_the_non_superuser_owner_and_its_members_are_refused(
    owned_database: OwnedDatabase,
) -> None:
    db = owned_database
    assert "owns or may act as the owner" in (_problem(db.owner_url) or "")
    with _login_role(db.name, "NOSUPERUSER NOBYPASSRLS", "recon_app", db.owner) as member:
        assert db.owner in (_problem(_url(member, db.name)) or "")
    with _login_role(db.name, "NOSUPERUSER NOBYPASSRLS", "recon_app") as app:
        assert _problem(_url(app, db.name)) is None


def test_member_of_a_superuser_role_is_refused(pg_app_url: str, pg_database: str) -> None:
    with _login_role(pg_database, "NOSUPERUSER NOBYPASSRLS", "recon_app", "postgres") as role:
        assert "member of 'postgres'" in (_problem(_url(role, pg_database)) or "")


def test_every_command_in_production_refuses_a_superuser(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    pg_owner_url: str,
    pg_app_url: str,
) -> None:
    monkeypatch.setenv("RECON_MIGRATION_DATABASE_URL", pg_owner_url)
    monkeypatch.setenv("RECON_DATABASE_URL", pg_owner_url)
    monkeypatch.setenv("RECON_ENV", "production")
    assert main(["tenant", "list"]) == ConfigError.exit_code
    err = capsys.readouterr().err
    assert "is a superuser" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setenv("RECON_DATABASE_URL", pg_app_url)
    assert main(["tenant", "list"]) == 0, capsys.readouterr().err


def test_development_warns_but_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, pg_owner_url: str
) -> None:
    monkeypatch.setenv("RECON_DATABASE_URL", pg_owner_url)
    assert main(["db", "upgrade"]) == 0
    assert main(["tenant", "list"]) == 0
    err = capsys.readouterr().err
    assert "is a superuser" in err and "development" in err


def test_doctor_fails_in_production_and_warns_in_development(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    pg_owner_url: str,
    pg_app_url: str,
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one table row per line
    monkeypatch.setenv("RECON_DATABASE_URL", pg_owner_url)
    monkeypatch.setenv("RECON_MIGRATION_DATABASE_URL", pg_owner_url)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    role_line = next(line for line in out.splitlines() if "database role" in line)
    assert "warn" in role_line and "is a superuser" in role_line
    monkeypatch.setenv("RECON_ENV", "production")
    assert main(["doctor"]) != 0
    out = capsys.readouterr().out
    role_line = next(line for line in out.splitlines() if "database role" in line)
    assert "FAIL" in role_line and "is a superuser" in role_line
    monkeypatch.setenv("RECON_DATABASE_URL", pg_app_url)
    assert main(["doctor"]) != 0  # production still lacks Vault; the role itself is fine
    out = capsys.readouterr().out
    role_line = next(line for line in out.splitlines() if "database role" in line)
    assert " ok " in role_line
