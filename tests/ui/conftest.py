"""Fixtures of the UI tests: a seeded database on SQLite (and PostgreSQL for the services)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

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
