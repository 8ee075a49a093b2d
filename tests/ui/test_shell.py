"""The router: sign-in gate, the menu per role, the tenant picker limited to granted tenants."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, update

from recon.db.models import User
from recon.db.tenancy import admin_session
from recon.review.users import hash_password
from recon.settings import get_settings
from tests.ui.apptest import open_app, texts
from tests.ui.seed import ADMIN, AUDITOR, FINANCE

PASSWORD = "correct horse battery staple"


def _set_password(engine: Engine, email: str) -> None:
    with admin_session(engine) as session:
        session.execute(
            update(User).where(User.email == email).values(password_hash=hash_password(PASSWORD))
        )


def test_signed_out_sees_only_the_login_form(app_db: Engine) -> None:
    app = open_app(None)
    assert not app.exception
    assert [t.label for t in app.text_input] == ["Email", "Password"]
    assert "Overview" not in texts(app)


def test_the_login_form_signs_in_and_refuses_a_wrong_password(app_db: Engine) -> None:
    _set_password(app_db, FINANCE)
    app = open_app(None)
    app.text_input[0].input(FINANCE)
    app.text_input[1].input("wrong")
    app.button[0].click().run()
    assert app.error and "Overview" not in texts(app)
    app.text_input[1].input(PASSWORD)
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert "Received (EUR): 245.00" in texts(app)
    assert f"Signed in as {FINANCE} (finance)" in texts(app)


def test_finance_lands_on_the_overview_with_its_tenant(app_db: Engine) -> None:
    app = open_app(FINANCE)
    assert not app.exception, app.exception
    assert "Overview" in texts(app)
    assert app.sidebar.selectbox[0].options == ["acme"]


def test_only_admins_get_the_admin_pages(app_db: Engine) -> None:
    for email in (FINANCE, AUDITOR):
        app = open_app(email)
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            app.switch_page("pages/users.py")
    admin = open_app(ADMIN)
    assert set(admin.sidebar.selectbox[0].options) == {"acme", "globex"}
    admin.switch_page("pages/users.py").run()
    assert not admin.exception, admin.exception
    assert FINANCE in admin.dataframe[0].value["email"].tolist()


def test_a_disabled_user_is_signed_out(app_db: Engine) -> None:
    with admin_session(app_db) as session:
        session.execute(update(User).where(User.email == FINANCE).values(active=False))
    app = open_app(FINANCE)
    assert "disabled" in texts(app)
    assert [t.label for t in app.text_input] == ["Email", "Password"]


def test_production_refuses_to_serve_without_oidc(
    app_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECON_ENV", "production")
    get_settings.cache_clear()
    app = open_app(FINANCE)
    assert "does not start in production without OpenID Connect" in texts(app)
    assert not app.text_input and "Overview" not in texts(app)
