"""Tenants cannot see or touch each other's rows: RLS on PostgreSQL, the data-access layer on
every backend (the only guard on SQLite)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.exc import DBAPIError, ProgrammingError

from recon.db.models import TENANT_TABLES, Invoice
from recon.db.tenancy import TenantViolationError, admin_session, tenant_session
from recon.tenants import TenantSettings, add_tenant


def _invoice(tenant: str, invoice_id: str) -> Invoice:
    return Invoice(
        tenant_id=tenant,
        invoice_id=invoice_id,
        client_id="1",
        issued_on=dt.date(2026, 11, 1),
        total_minor=1000,
        balance_minor=1000,
        currency="EUR",
        status="Unpaid",
    )


def _seed(owner: Engine, app: Engine) -> None:
    with admin_session(owner) as session:
        for tenant in ("tenant-a", "tenant-b"):
            add_tenant(session, tenant, tenant.upper(), TenantSettings(), actor="test")
    for tenant in ("tenant-a", "tenant-b"):
        with tenant_session(app, tenant) as session:
            session.add_all([_invoice(tenant, f"{tenant}-1"), _invoice(tenant, f"{tenant}-2")])


def _check_isolation(app: Engine) -> None:
    with tenant_session(app, "tenant-a") as session:
        rows = session.scalars(select(Invoice)).all()
        assert {r.tenant_id for r in rows} == {"tenant-a"} and len(rows) == 2
        # Explicitly asking for B's rows still returns nothing.
        assert session.scalars(select(Invoice).where(Invoice.tenant_id == "tenant-b")).all() == []
        changed = session.execute(
            update(Invoice).where(Invoice.tenant_id == "tenant-b").values(status="Paid")
        )
        assert changed.rowcount == 0  # type: ignore[attr-defined]
        removed = session.execute(delete(Invoice).where(Invoice.invoice_id == "tenant-b-1"))
        assert removed.rowcount == 0  # type: ignore[attr-defined]
    with tenant_session(app, "tenant-b") as session:
        statuses = session.scalars(select(Invoice.status)).all()
        assert statuses == ["Unpaid", "Unpaid"]


def test_sqlite_data_access_layer_isolates_tenants(sqlite_engine: Engine) -> None:
    _seed(sqlite_engine, sqlite_engine)
    _check_isolation(sqlite_engine)
    with pytest.raises(TenantViolationError), tenant_session(sqlite_engine, "tenant-a") as session:
        session.add(_invoice("tenant-b", "sneaky"))
    with tenant_session(sqlite_engine, "tenant-a") as session:
        own = session.scalars(select(Invoice)).first()
        assert own is not None
        own.tenant_id = "tenant-b"
        with pytest.raises(TenantViolationError):
            session.flush()
        session.rollback()
    with admin_session(sqlite_engine) as session:
        assert session.scalar(select(func.count()).select_from(Invoice)) == 4


@pytest.mark.postgres
def test_rls_catalog(pg_owner_engine: Engine) -> None:
    with pg_owner_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "JOIN information_schema.columns col ON col.table_name = c.relname "
                "AND col.table_schema = n.nspname AND col.column_name = 'tenant_id' "
                "WHERE n.nspname = 'public' AND c.relkind = 'r'"
            )
        ).all()
    assert {r.relname for r in rows} == set(TENANT_TABLES)
    assert all(r.relrowsecurity and r.relforcerowsecurity for r in rows)


@pytest.mark.postgres
def test_app_role_is_not_privileged(pg_app_engine: Engine) -> None:
    with pg_app_engine.connect() as conn:
        role = conn.execute(
            text(
                "SELECT rolsuper, rolbypassrls, "
                "(SELECT count(*) FROM pg_tables WHERE tableowner = current_user) AS owned "
                "FROM pg_roles WHERE rolname = current_user"
            )
        ).one()
    assert (role.rolsuper, role.rolbypassrls, role.owned) == (False, False, 0)


@pytest.mark.postgres
def test_rls_isolates_tenants_on_postgresql(pg_owner_engine: Engine, pg_app_engine: Engine) -> None:
    _seed(pg_owner_engine, pg_app_engine)
    _check_isolation(pg_app_engine)


@pytest.mark.postgres
def test_rls_without_the_orm_guard(pg_owner_engine: Engine, pg_app_engine: Engine) -> None:
    """Raw SQL on the app role, past the data-access layer: the database itself says no."""
    _seed(pg_owner_engine, pg_app_engine)
    with pg_app_engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM invoices")).scalar() == 0  # no tenant set
        conn.execute(text("SELECT set_config('app.tenant_id', 'tenant-a', true)"))
        assert conn.execute(text("SELECT count(*) FROM invoices")).scalar() == 2
        updated = conn.execute(
            text("UPDATE invoices SET status = 'Paid' WHERE tenant_id = 'tenant-b'")
        )
        assert updated.rowcount == 0
        deleted = conn.execute(text("DELETE FROM invoices WHERE tenant_id = 'tenant-b'"))
        assert deleted.rowcount == 0
    with pytest.raises(ProgrammingError, match="row-level security"), pg_app_engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.tenant_id', 'tenant-a', true)"))
        conn.execute(
            text(
                "INSERT INTO invoices (tenant_id, invoice_id, client_id, issued_on, total_minor, "
                "balance_minor, currency, status, created_at, updated_at) VALUES ('tenant-b', 'x', "
                "'1', '2026-11-01', 1, 1, 'EUR', 'Unpaid', now(), now())"
            )
        )
    with pytest.raises(DBAPIError), pg_app_engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.tenant_id', 'tenant-a', true)"))
        conn.execute(text("UPDATE invoices SET tenant_id = 'tenant-b'"))


@pytest.mark.postgres
def test_tenant_does_not_leak_across_pooled_transactions(
    pg_owner_engine: Engine, pg_app_engine: Engine
) -> None:
    _seed(pg_owner_engine, pg_app_engine)
    with pg_app_engine.connect() as conn:
        with conn.begin():
            conn.execute(text("SELECT set_config('app.tenant_id', 'tenant-a', true)"))
            assert conn.execute(text("SELECT count(*) FROM invoices")).scalar() == 2
        with conn.begin():  # same connection, next transaction: the setting is gone
            assert conn.execute(text("SELECT count(*) FROM invoices")).scalar() == 0
