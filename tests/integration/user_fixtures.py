"""Fixtures of the user-management tests: a migrated database with tenants acme and globex, on
SQLite and on PostgreSQL as the application role (tenant_grants under row-level security)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, select

from apps.cli.main import main
from recon.db.models import AuditEntry
from recon.db.tenancy import admin_session, tenant_session
from recon.review.users import add_user
from recon.tenants import TenantSettings, add_tenant

ADMIN = "root@acme.test"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Backend:
    """The schema owner's engine, the application's engine and the application's URL."""

    owner: Engine
    app: Engine
    url: str


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
"""The parameters of each module's `backend` fixture."""


def make_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """A migrated database with tenants acme and globex; the CLI points at the app role.

    Each module's `backend` fixture (parametrised with BACKENDS) returns this."""
    if request.param == "sqlite":
        engine = request.getfixturevalue("sqlite_engine")
        found = Backend(engine, engine, request.getfixturevalue("sqlite_url"))
    else:
        found = Backend(
            request.getfixturevalue("pg_owner_engine"),
            request.getfixturevalue("pg_app_engine"),
            request.getfixturevalue("pg_app_url"),
        )
    monkeypatch.setenv("RECON_DATABASE_URL", found.url)
    with admin_session(found.owner) as session:
        for tenant in ("acme", "globex"):
            add_tenant(session, tenant, tenant.title(), TenantSettings(), actor="test")
    return found


def bootstrapped(backend: Backend) -> Engine:
    """The application engine with a bootstrapped admin (granted acme)."""
    add_user(backend.app, None, ADMIN, "admin", tenants=["acme"])
    return backend.app


def user_audit(engine: Engine, tenant: str) -> list[AuditEntry]:
    """The tenant's audit entries about users, in chain order."""
    with tenant_session(engine, tenant) as session:
        query = select(AuditEntry).where(AuditEntry.entity == "user").order_by(AuditEntry.seq)
        return list(session.scalars(query))


def cli(capsys: pytest.CaptureFixture[str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    """Run `recon ARGS` with `stdin`; (exit code, stdout, stderr)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err
