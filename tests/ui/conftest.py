"""Fixtures of the UI tests: a seeded database (SQLite and PostgreSQL for the services; SQLite
for the app under AppTest, which reads RECON_DATABASE_URL like `recon ui`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.ui.apptest import point_at
from tests.ui.seed import seed


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The application engine on a seeded database (PostgreSQL: the RLS-bound app role)."""
    if request.param == "sqlite":
        engine: Engine = request.getfixturevalue("sqlite_engine")
        owner = engine
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        engine = request.getfixturevalue("pg_app_engine")
    seed(engine, owner)
    yield engine


@pytest.fixture
def app_db(sqlite_engine: Engine, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A seeded SQLite database the app under test reads."""
    seed(sqlite_engine)
    point_at(monkeypatch, sqlite_url)
    return sqlite_engine
