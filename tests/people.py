"""Test helper: users and grants written straight through the models (no service call), so
service tests do not depend on the user-management code they are not about."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from recon.db.models import TenantGrant, User
from recon.db.tenancy import admin_session, tenant_session
from recon.review.access import Actor, Role
from recon.tenants import TenantSettings, add_tenant


def make_user(
    engine: Engine,
    email: str,
    role: Role | str,
    tenants: tuple[str, ...] = (),
    *,
    active: bool = True,
) -> Actor:
    """Insert an active user with `role` and a grant on each of `tenants`; return its Actor."""
    with admin_session(engine) as session:
        user = User(
            email=email.lower(),
            display_name=email.split("@")[0],
            role=str(Role(role)),
            active=active,
        )
        session.add(user)
        session.flush()
        user_id = user.id
    for tenant in tenants:
        with tenant_session(engine, tenant) as session:
            session.add(TenantGrant(tenant_id=tenant, user_id=user_id, granted_by="test"))
    return Actor(user_id, email.lower(), Role(role), email.split("@")[0])


def backend_with_finance(
    request: pytest.FixtureRequest,
    tenant: str = "acme",
    email: str = "fin@acme.test",
    settings: TenantSettings | None = None,
) -> Engine:
    """For a fixture parametrised with "sqlite"/"postgresql": the application engine (on
    PostgreSQL the RLS-bound role) of a migrated database with `tenant` added by the owner and
    a finance user granted on it."""
    owner: Engine
    engine: Engine
    if request.param == "sqlite":
        owner = engine = request.getfixturevalue("sqlite_engine")
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        engine = request.getfixturevalue("pg_app_engine")
    with admin_session(owner) as session:
        add_tenant(session, tenant, tenant.title(), settings or TenantSettings(), actor="test")
    make_user(engine, email, "finance", (tenant,))
    return engine
