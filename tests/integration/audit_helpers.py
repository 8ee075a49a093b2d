"""Shared by the audit log tests: both backends, a tenant's chain, and an owner who tampers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from recon import audit
from recon.db.models import AuditEntry
from recon.db.tenancy import admin_session, tenant_session
from recon.tenants import TenantSettings, add_tenant

TENANT = "acme"
Statement = str | tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Backend:
    """The owner's engine (who can drop triggers) and the application's, with its URL."""

    name: str
    owner: Engine
    app: Engine
    app_url: str


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each test runs on SQLite and on PostgreSQL (as the non-owner application role)."""
    if request.param == "sqlite":
        engine: Engine = request.getfixturevalue("sqlite_engine")
        return Backend("sqlite", engine, engine, request.getfixturevalue("sqlite_url"))
    return Backend(
        "postgres",
        request.getfixturevalue("pg_owner_engine"),
        request.getfixturevalue("pg_app_engine"),
        request.getfixturevalue("pg_app_url"),
    )


def write_chain(b: Backend, entries: int = 6) -> None:
    """`tenant.added` (by the owner, as `recon tenant add`) and entries-1 more by the app."""
    with admin_session(b.owner) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    for i in range(entries - 1):
        with tenant_session(b.app, TENANT) as session:
            audit.append(
                session,
                actor="alice",
                action="allocation.approved",
                entity="allocation",
                entity_id=str(i),
                details={"amount_minor": 1000 + i, "note": "ünïcode ok"},
            )


def verify(b: Backend) -> audit.ChainReport:
    with tenant_session(b.app, TENANT) as session:
        return audit.verify_chain(session, TENANT)


def tamper(b: Backend, *statements: Statement) -> None:
    """What the table's owner can do: switch the guard triggers off, then edit."""
    with b.owner.begin() as conn:
        if b.name == "postgres":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        for statement in statements:
            sql, params = (statement, {}) if isinstance(statement, str) else statement
            conn.execute(text(sql), params)
        if b.name == "postgres":
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))


def stored_entries(b: Backend) -> list[AuditEntry]:
    """The tenant's entries as the owner reads them (detached, safe to change in memory)."""
    with Session(b.owner, expire_on_commit=False) as session:
        entries = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.tenant_id == TENANT).order_by(AuditEntry.seq)
            )
        )
        session.expunge_all()
    return entries


def rechain_with_sha256(
    entries: Sequence[AuditEntry], start_seq: int, **changes: Any
) -> list[Statement]:
    """A forger's rewrite: apply `changes` to entry `start_seq`, then recompute the plain
    SHA-256 hash of it and of every later entry, so each one links to the one before."""
    statements: list[Statement] = []
    prev_hash = audit.GENESIS_HASH
    for entry in entries:
        if entry.seq == start_seq:
            for name, value in changes.items():
                setattr(entry, name, value)
        if entry.seq >= start_seq:
            entry.prev_hash = prev_hash
            entry.entry_hash = audit.compute_hash(prev_hash, audit.entry_payload(entry))
            sets = (
                ", ".join(f"{name} = :{name}" for name in changes) if entry.seq == start_seq else ""
            )
            statements.append(
                (
                    f"UPDATE audit_log SET {sets + ', ' if sets else ''}"
                    "prev_hash = :prev_hash, entry_hash = :entry_hash WHERE id = :id",
                    {
                        **(changes if entry.seq == start_seq else {}),
                        "prev_hash": entry.prev_hash,
                        "entry_hash": entry.entry_hash,
                        "id": entry.id,
                    },
                )
            )
        prev_hash = entry.entry_hash
    return statements
