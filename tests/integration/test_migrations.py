"""The schema comes only from migrations: round trips, drift and the schema gate."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from recon.db import migrate
from recon.db.engine import make_engine
from recon.db.models import Base
from recon.errors import SchemaNotAtHeadError


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _assert_no_drift(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def _round_trip(engine: Engine) -> None:
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert _tables(engine) == set(Base.metadata.tables)
    _assert_no_drift(engine)
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    assert _tables(engine) == set()
    migrate.upgrade(engine)
    assert _tables(engine) == set(Base.metadata.tables)
    _assert_no_drift(engine)


def test_one_head_and_a_linear_history() -> None:
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    assert len(scripts.get_heads()) == 1
    for revision in scripts.walk_revisions():
        assert revision.down_revision is None or isinstance(revision.down_revision, str)


def test_round_trip_on_sqlite(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    _round_trip(engine)
    engine.dispose()


@pytest.mark.postgres
def test_round_trip_on_postgresql(pg_owner_url: str) -> None:
    engine = make_engine(pg_owner_url)
    _round_trip(engine)
    engine.dispose()


def test_every_step_downgrades_and_upgrades_again(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = [r.revision for r in reversed(list(scripts.walk_revisions()))]
    for revision in revisions:
        migrate.upgrade(engine, revision)
        previous = scripts.get_revision(revision).down_revision
        migrate.downgrade(engine, previous if isinstance(previous, str) else "base")
        migrate.upgrade(engine, revision)
        assert migrate.current_revision(engine) == revision
    engine.dispose()


def test_gate_refuses_an_empty_and_an_old_database(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with pytest.raises(SchemaNotAtHeadError, match="recon db upgrade"):
        migrate.ensure_at_head(engine)
    migrate.upgrade(engine, "0001")
    with pytest.raises(SchemaNotAtHeadError, match="at revision 0001"):
        migrate.ensure_at_head(engine)
    migrate.upgrade(engine)
    migrate.ensure_at_head(engine)
    engine.dispose()
