"""Fixtures shared by every test: isolated settings, fresh SQLite and PostgreSQL databases."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

from recon.db import migrate
from recon.db.engine import make_engine
from recon.redaction import forget_all_secrets
from recon.settings import get_settings
from tests.services import POSTGRES_START, require_service

# Sandbox fixtures shared by several integration modules (whmcs_state, whmcs_client, ...).
pytest_plugins = ["tests.integration.whmcs_fixtures"]

PG_HOST = os.environ.get("RECON_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("RECON_TEST_PG_PORT", "5432"))
PG_SUPERUSER = os.environ.get("RECON_TEST_PG_USER", "postgres")
APP_LOGIN_ROLE = "recon_test_app"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No RECON_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("RECON_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RECON_DATA_DIR", str(tmp_path / "var"))
    # The audit chain is keyed (no default key exists): each test gets a random development key.
    monkeypatch.setenv("RECON_SECRET_AUDIT_CHAIN_KEY", secrets.token_hex(32))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    forget_all_secrets()
    yield
    get_settings.cache_clear()
    forget_all_secrets()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a new, empty SQLite file."""
    return f"sqlite:///{tmp_path / 'recon.db'}"


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """An engine on a SQLite database migrated to head."""
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _pg_conninfo(dbname: str, user: str = PG_SUPERUSER) -> str:
    return f"host={PG_HOST} port={PG_PORT} user={user} dbname={dbname}"


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database; yields its name and drops it afterwards."""
    require_service("PostgreSQL", PG_HOST, PG_PORT, POSTGRES_START)
    name = f"recon_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_pg_conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(_pg_conninfo("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def pg_owner_url(pg_database: str) -> str:
    """URL of the schema owner (the superuser here) on the fresh database."""
    return f"postgresql+psycopg://{PG_SUPERUSER}@{PG_HOST}:{PG_PORT}/{pg_database}"


@pytest.fixture
def pg_owner_engine(pg_owner_url: str) -> Iterator[Engine]:
    """The owner's engine on a PostgreSQL database migrated to head."""
    engine = make_engine(pg_owner_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_app_url(pg_owner_engine: Engine, pg_database: str) -> str:
    """URL of a login role that is only a member of `recon_app`: what the application uses."""
    with psycopg.connect(_pg_conninfo("postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_LOGIN_ROLE,)
        ).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE recon_app").format(
                    sql.Identifier(APP_LOGIN_ROLE)
                )
            )
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO recon_app").format(sql.Identifier(pg_database))
        )
    return f"postgresql+psycopg://{APP_LOGIN_ROLE}@{PG_HOST}:{PG_PORT}/{pg_database}"


@pytest.fixture
def pg_app_engine(pg_app_url: str) -> Iterator[Engine]:
    """The application's (non-owner) engine on the migrated PostgreSQL database."""
    engine = make_engine(pg_app_url)
    yield engine
    engine.dispose()
