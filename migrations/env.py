"""Alembic environment: the URL comes from the settings (or a connection handed in by code).

All the revisions of one command run in one transaction, DDL included, also on SQLite (see
`recon.db.engine.schema_transaction`): an interrupted upgrade leaves the database where it was.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from recon.db import models
from recon.db.engine import make_engine, schema_transaction
from recon.settings import get_settings

config = context.config
target_metadata = models.Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )


def run_migrations_offline() -> None:
    """Emit SQL for the configured URL without connecting."""
    url = config.get_main_option("sqlalchemy.url") or get_settings().resolved_migration_url
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a connection handed in by `recon.db.migrate`, or one made from settings."""
    connection = config.attributes.get("connection")
    if connection is not None:  # already inside `schema_transaction`
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().resolved_migration_url
    engine = make_engine(url)
    try:
        with engine.connect() as conn, schema_transaction(conn):
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
