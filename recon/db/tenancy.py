"""Tenant-scoped sessions: the one way application code reads and writes business tables.

Two layers keep tenants apart:

* on PostgreSQL, row-level security (see the initial migration) filters on
  `current_setting('app.tenant_id')`, which `tenant_session` sets at the start of every
  transaction with a bound `set_config(..., true)`: it cannot leak to the next user of a pooled
  connection;
* on every backend, the ORM adds `tenant_id = :tenant` to every SELECT, UPDATE and DELETE on a
  tenant table, and refuses to flush a row that belongs to another tenant. This is the whole
  isolation on SQLite and defence in depth on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, with_loader_criteria

from recon.db.base import TenantScoped
from recon.errors import ReconError

TENANT_KEY = "recon_tenant_id"


class TenantViolationError(ReconError):
    """A write tried to touch another tenant's rows."""


def _tenant_of(session: Session) -> str | None:
    value = session.info.get(TENANT_KEY)
    return value if isinstance(value, str) else None


@event.listens_for(Session, "after_begin")
def _set_database_tenant(
    session: Session, _transaction: SessionTransaction, connection: Connection
) -> None:
    tenant = _tenant_of(session)
    if tenant is not None and connection.dialect.name == "postgresql":
        connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})


@event.listens_for(Session, "do_orm_execute")
def _scope_statements(state: ORMExecuteState) -> None:
    tenant = _tenant_of(state.session)
    if tenant is None:
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(
            with_loader_criteria(
                TenantScoped,
                lambda cls: cls.tenant_id == tenant,
                include_aliases=True,
                track_closure_variables=False,
            )
        )


@event.listens_for(Session, "before_flush")
def _check_tenant_of_writes(session: Session, _context: Any, _instances: Any) -> None:
    tenant = _tenant_of(session)
    if tenant is None:
        return
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if not isinstance(obj, TenantScoped):
            continue
        owner: str | None = obj.tenant_id  # None until set: new rows may leave it to us
        if owner is None and obj in session.new:
            obj.tenant_id = tenant
        elif owner != tenant:
            raise TenantViolationError(
                f"refused to write a {type(obj).__name__} of another tenant while acting "
                f"for tenant {tenant!r}"
            )


def bind_tenant(session: Session, tenant_id: str) -> None:
    """Make an open session act for `tenant_id` from now on, in this transaction too."""
    session.info[TENANT_KEY] = tenant_id
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant_id})


@contextmanager
def tenant_session(engine: Engine, tenant_id: str) -> Iterator[Session]:
    """A session that sees and writes only `tenant_id`'s rows; commits on success."""
    if not tenant_id:
        raise ValueError("tenant_id must not be empty")
    with (
        Session(engine, info={TENANT_KEY: tenant_id}, expire_on_commit=False) as session,
        session.begin(),
    ):
        yield session


@contextmanager
def admin_session(engine: Engine) -> Iterator[Session]:
    """A session for tables outside any tenant (the tenant registry); commits on success.

    On PostgreSQL it sets no tenant, so row-level security shows it no business rows.
    """
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session
