"""The Connections page under AppTest: an admin walks the GoCardless wizard against the sandbox
over real HTTP and sees the linked accounts, their consent and quota; finance and auditors do not
get the page; a consent about to end is a warning; connectivity checks show their verdicts."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import Engine, select

from connectors.sandbox.serve import RunningServer
from recon.db.models import AuditEntry, SourceAccount, Tenant
from recon.db.tenancy import admin_session, tenant_session
from tests.integration.gocardless_fixtures import (
    SECRET_ID,
    SECRET_KEY,
    FakeClock,
    bad_state,
    bank_seed,
    clock,
    gc_server,
    payments_state,
)
from tests.ui.apptest import open_app, texts
from tests.ui.seed import ADMIN, AUDITOR, FINANCE

__all__ = ["bad_state", "bank_seed", "clock", "gc_server", "payments_state"]

ING = "ING_INGBNL2A"


@pytest.fixture
def bank_db(
    app_db: Engine, gc_server: RunningServer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> Engine:
    """The seeded app database, tenant acme reading GoCardless from the sandbox, whose clock
    reads the real now (the page judges the consent the sandbox dates as of the real now)."""
    clock.now = dt.datetime.now(dt.UTC)
    with admin_session(app_db) as session:
        tenant = session.get(Tenant, "acme")
        assert tenant is not None
        tenant.settings = {"gocardless": {"enabled": True, "base_url": gc_server.url}}
    monkeypatch.setenv("RECON_SECRET_ACME__GOCARDLESS_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("RECON_SECRET_ACME__GOCARDLESS_SECRET_KEY", SECRET_KEY)
    return app_db


def test_finance_and_auditors_do_not_get_the_page(bank_db: Engine) -> None:
    for email in (FINANCE, AUDITOR):
        app = open_app(email)
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            app.switch_page("pages/connections.py")


def test_an_admin_links_a_bank_through_the_wizard(bank_db: Engine) -> None:
    app = open_app(ADMIN, "connections")
    assert not app.exception, app.exception
    assert "No bank account yet" in texts(app)
    app.text_input(key="conn_country").input("NL")
    app.button(key="conn_find").click().run()
    assert not app.exception, app.exception
    banks = app.selectbox(key="conn_bank")
    assert banks.options == ["Abnamro (ABNAMRO_ABNANL2A)", f"Ing ({ING})"]  # sorted by name
    banks.set_value(ING).run()
    app.number_input(key="conn_access").set_value(120).run()
    app.button(key="conn_start").click().run()
    assert not app.exception, app.exception
    link = app.code[0].value
    requisition = app.text_input(key="conn_requisition").value
    assert requisition and f"/{requisition}/{ING}" in link
    app.button(key="conn_check").click().run()
    assert "created: waiting for the account holder" in "\n".join(t.value for t in app.text)
    with httpx.Client() as browser:
        assert browser.get(f"{link}/allow").status_code == 302
    app.button(key="conn_check").click().run()
    assert f"Requisition {requisition}: linked" in "\n".join(t.value for t in app.text)
    app.button(key="conn_link").click().run()
    assert not app.exception, app.exception
    assert "account(s) linked" in texts(app)
    accounts = app.dataframe[0].value  # the status table; [1] is what the link stored
    assert set(accounts["currency"]) == {"EUR"}
    assert all("ok" in c for c in accounts["consent"])
    assert all("details 3/4" in q for q in accounts["quota left today"])
    with tenant_session(bank_db, "acme") as session:
        stored = session.scalars(select(SourceAccount.requisition_id)).all()
        actions = session.scalars(
            select(AuditEntry.actor + " " + AuditEntry.action).where(
                AuditEntry.action.like("bank.%")
            )
        ).all()
    assert set(stored) == {requisition}
    assert actions == [f"{ADMIN} bank.connection_started", f"{ADMIN} bank.accounts_linked"]


def test_a_consent_ending_soon_is_a_warning_and_connectivity_is_checked(bank_db: Engine) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=3, hours=1)
    with tenant_session(bank_db, "acme") as session:
        session.add(SourceAccount(tenant_id="acme", provider="gocardless", external_id="acc-1",
                                  name="Main Account", currency="EUR", consent_expires_at=soon))  # fmt: skip
    app = open_app(ADMIN, "connections")
    assert not app.exception, app.exception
    assert [w.value for w in app.warning] == [
        f"the bank consent of Main Account ends on {soon:%Y-%m-%d} (3 days left); "
        "connect it again before then"
    ]
    app.button(key="conn_probe").click().run()
    assert not app.exception, app.exception
    assert [s.value for s in app.success] == ["GoCardless: GoCardless issued an access token"]
