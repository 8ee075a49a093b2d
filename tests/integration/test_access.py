"""The access check every service call makes: role from the database, grant per tenant."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, update

from recon.db.models import User
from recon.db.tenancy import admin_session, tenant_session
from recon.errors import PermissionDeniedError
from recon.review.access import Actor, Permission, Role, require, require_global
from recon.tenants import TenantSettings, add_tenant
from tests.people import make_user


@pytest.fixture(params=["sqlite", "postgresql"])
def engines(request: pytest.FixtureRequest) -> Iterator[tuple[Engine, Engine]]:
    """(owner, application) engines on a migrated database with tenants acme and globex."""
    if request.param == "sqlite":
        engine = request.getfixturevalue("sqlite_engine")
        owner, app = engine, engine
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
    with admin_session(owner) as session:
        for tenant in ("acme", "globex"):
            add_tenant(session, tenant, tenant.title(), TenantSettings(), actor="test")
    yield owner, app


def _check(app: Engine, who: Actor | str, tenant: str, permission: Permission) -> Actor:
    with tenant_session(app, tenant) as session:
        return require(session, who, tenant, permission)


def test_each_role_gets_exactly_its_permissions(engines: tuple[Engine, Engine]) -> None:
    _, app = engines
    make_user(app, "fin@acme.test", Role.FINANCE, ("acme",))
    make_user(app, "aud@acme.test", Role.AUDITOR, ("acme",))
    make_user(app, "adm@acme.test", Role.ADMIN, ("acme",))
    allowed = {
        "fin@acme.test": {Permission.READ, Permission.EXPORT, Permission.WORK},
        "aud@acme.test": {Permission.READ, Permission.EXPORT},
        "adm@acme.test": set(Permission),
    }
    for email, permissions in allowed.items():
        for permission in Permission:
            if permission in permissions:
                assert _check(app, email, "acme", permission).email == email
            else:
                with pytest.raises(PermissionDeniedError, match="may not"):
                    _check(app, email, "acme", permission)


def test_a_user_without_a_grant_is_refused_the_tenant(engines: tuple[Engine, Engine]) -> None:
    _, app = engines
    make_user(app, "fin@acme.test", Role.FINANCE, ("acme",))
    with pytest.raises(PermissionDeniedError, match="no access to tenant 'globex'"):
        _check(app, "fin@acme.test", "globex", Permission.READ)


def test_the_role_comes_from_the_database_not_the_caller(engines: tuple[Engine, Engine]) -> None:
    _, app = engines
    auditor = make_user(app, "aud@acme.test", Role.AUDITOR, ("acme",))
    forged = Actor(auditor.user_id, auditor.email, Role.ADMIN, auditor.display_name)
    with pytest.raises(PermissionDeniedError, match="is an auditor and may not change"):
        _check(app, forged, "acme", Permission.WORK)


def test_unknown_disabled_and_missing_users_are_refused(engines: tuple[Engine, Engine]) -> None:
    _, app = engines
    make_user(app, "fin@acme.test", Role.FINANCE, ("acme",))
    with pytest.raises(PermissionDeniedError, match=r"there is no user 'ghost@acme\.test'"):
        _check(app, "Ghost@Acme.test", "acme", Permission.READ)
    with pytest.raises(PermissionDeniedError, match="--as EMAIL"):
        _check(app, " ", "acme", Permission.READ)
    with admin_session(app) as session:
        session.execute(update(User).where(User.email == "fin@acme.test").values(active=False))
    with pytest.raises(PermissionDeniedError, match="is disabled"):
        _check(app, "FIN@acme.test", "acme", Permission.READ)


def test_managing_users_is_for_admins(engines: tuple[Engine, Engine]) -> None:
    _, app = engines
    make_user(app, "fin@acme.test", Role.FINANCE, ("acme",))
    make_user(app, "adm@acme.test", Role.ADMIN)
    with admin_session(app) as session:
        assert require_global(session, "adm@acme.test", Permission.MANAGE).role is Role.ADMIN
        with pytest.raises(PermissionDeniedError, match="admins only"):
            require_global(session, "fin@acme.test", Permission.MANAGE)


def test_require_refuses_a_session_acting_for_another_tenant(
    engines: tuple[Engine, Engine],
) -> None:
    _, app = engines
    make_user(app, "fin@acme.test", Role.FINANCE, ("acme", "globex"))
    with tenant_session(app, "globex") as session, pytest.raises(ValueError, match="acme"):
        require(session, "fin@acme.test", "acme", Permission.READ)
