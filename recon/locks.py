"""One writer per tenant: two runs of the same tenant never write at the same time.

PostgreSQL: a session-level advisory lock held on a dedicated connection for the whole run; it
is released when the run ends or its process dies (the connection closes). SQLite: an
exclusive `flock` on a file next to the database, which the kernel releases likewise.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from recon.errors import ReconError


class TenantBusyError(ReconError):
    """Another run of the same tenant is writing."""

    exit_code = 10


def _busy(tenant_id: str) -> TenantBusyError:
    return TenantBusyError(
        f"another run for tenant {tenant_id!r} is writing right now; try again when it finishes"
    )


@contextmanager
def tenant_lock(engine: Engine, tenant_id: str) -> Iterator[None]:
    """Hold the tenant's writer lock, or fail at once with TenantBusyError."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            got = connection.execute(
                text("SELECT pg_try_advisory_lock(hashtextextended(:key, 0))"),
                {"key": f"recon-run:{tenant_id}"},
            ).scalar()
            connection.commit()
            if not got:
                raise _busy(tenant_id)
            try:
                yield
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"),
                    {"key": f"recon-run:{tenant_id}"},
                )
                connection.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield  # one process, one connection: nothing else can write
        return
    path = Path(f"{database}.{tenant_id}.lock")
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(tenant_id) from None
        yield
    finally:
        os.close(descriptor)


def sqlite_write_lock(session: Session) -> None:
    """On SQLite, take the database's write lock now, for the rest of the transaction.

    A transaction that has read may not write once another has committed (WAL), so writers that
    read first must take the lock before their first read and queue here instead of failing. Only
    a write takes it: one that matches no row of the tenant registry, never a business table."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE tenants SET id = id WHERE 0 = 1"))


def transaction_lock(session: Session, key: str) -> None:
    """Serialise the transactions that take `key` until each ends: a transaction-level advisory
    lock on PostgreSQL, the write lock on SQLite (which serialises every writer anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
        )
    else:
        sqlite_write_lock(session)
