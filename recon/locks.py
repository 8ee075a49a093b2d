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
