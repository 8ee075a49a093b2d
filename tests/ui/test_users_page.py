"""The Users page under AppTest, on SQLite and on PostgreSQL (the app as the RLS-bound role): an
admin changes a user's role, audited with the old and the new role; the last active admin keeps
theirs, with the refusal's one sentence."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from recon.db.models import AuditEntry, User
from recon.db.tenancy import admin_session, tenant_session
from tests.ui.apptest import open_app, point_at, texts
from tests.ui.seed import ADMIN, FINANCE, seed


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def users_db(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A seeded database the app under test reads (its one admin is ADMIN)."""
    if request.param == "sqlite":
        engine: Engine = request.getfixturevalue("sqlite_engine")
        seed(engine)
        point_at(monkeypatch, request.getfixturevalue("sqlite_url"))
    else:
        engine = request.getfixturevalue("pg_app_engine")
        seed(engine, request.getfixturevalue("pg_owner_engine"))
        point_at(monkeypatch, request.getfixturevalue("pg_app_url"))
    yield engine


def _role(engine: Engine, email: str) -> str:
    with admin_session(engine) as session:
        return session.scalars(select(User.role).where(User.email == email)).one()


def test_an_admin_changes_a_role_on_the_users_page(users_db: Engine) -> None:
    app = open_app(ADMIN, "users")
    assert not app.exception, app.exception
    app.selectbox(key="user_pick").set_value(FINANCE).run()
    picker = app.selectbox(key=f"role_pick_{FINANCE}")
    assert picker.value == "finance" and app.button(key="role_set").disabled
    picker.set_value("auditor").run()
    app.button(key="role_set").click().run()
    assert not app.exception, app.exception
    assert f"{FINANCE} is now auditor (was finance)" in texts(app)
    table = app.dataframe[0].value.set_index("email")
    assert table.loc[FINANCE, "role"] == "auditor"
    assert _role(users_db, FINANCE) == "auditor"

    with tenant_session(users_db, "acme") as session:
        entry = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "user.role_changed")
            .order_by(AuditEntry.seq.desc())
        ).first()
        assert entry is not None
        assert (entry.actor, entry.entity_id, entry.details) == (
            ADMIN,
            FINANCE,
            {"email": FINANCE, "before": "finance", "after": "auditor"},
        )


def test_the_last_admin_keeps_the_role_on_the_users_page(users_db: Engine) -> None:
    app = open_app(ADMIN, "users")
    app.selectbox(key="user_pick").set_value(ADMIN).run()
    app.selectbox(key=f"role_pick_{ADMIN}").set_value("finance").run()
    app.button(key="role_set").click().run()
    assert not app.exception, app.exception
    assert app.error and "last active admin" in app.error[0].value
    assert _role(users_db, ADMIN) == "admin"
