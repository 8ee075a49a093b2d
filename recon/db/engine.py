"""Engines for the configured database, with the per-backend settings that keep data safe."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

from recon.errors import ConfigError


def _normalise_url(url: str) -> str:
    """Use psycopg 3 for bare `postgresql://` URLs and PyMySQL for bare `mysql://` ones."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith(("mysql://", "mariadb://")):
        return "mysql+pymysql://" + url.split("://", 1)[1]
    return url


def _on_sqlite_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def create_private_sqlite_file(path: Path) -> None:
    """Create a missing SQLite file 0600 (its -wal and -shm files take the same mode)."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def describe_url(url: str) -> str:
    """The URL as it may be shown to a person: the password is masked."""
    try:
        return make_url(_normalise_url(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite files get their folder created and safe pragmas."""
    url = _normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "RECON_DATABASE_URL is not a valid database URL; expected e.g. "
            "sqlite:///var/recon.db or postgresql://user@host/db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            create_private_sqlite_file(Path(database))
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


@contextmanager
def schema_transaction(connection: Connection) -> Iterator[None]:
    """One transaction around schema changes, DDL included, committed only if all succeed.

    PostgreSQL's DDL is transactional as it is. Python's sqlite3 driver runs DDL outside any
    transaction (it opens one only before DML), so on SQLite the driver's own transaction
    handling is switched off for the duration and the transaction is begun here, `IMMEDIATE`
    so that two migrators queue on the write lock instead of failing half-way.
    """
    if connection.dialect.name != "sqlite":
        with connection.begin():
            yield
        return
    if connection.in_transaction():
        connection.commit()
    dbapi_connection = cast(sqlite3.Connection, connection.connection.dbapi_connection)
    previous = dbapi_connection.isolation_level
    dbapi_connection.isolation_level = None  # the driver no longer begins or commits by itself
    try:
        with connection.begin():  # its commit or rollback reaches the driver, ends our BEGIN
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield
    finally:
        dbapi_connection.isolation_level = previous


def without_jit(session: Session) -> None:
    """Turn PostgreSQL's JIT off for the session's transaction (a no-op elsewhere). One-off
    aggregates over hundreds of thousands of rows cross its cost threshold and spend seconds
    compiling (4.8 s of a 9.1 s Overview query, 0.6-2.3 s per report aggregate at 1,000,000
    transactions), far more than compiling saves."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))
