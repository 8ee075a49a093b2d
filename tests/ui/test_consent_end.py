"""A bank consent's end is GoCardless's own date, on SQLite and PostgreSQL against the sandbox
over real HTTP: the agreement's `access_valid_for_days` counted from when the account holder
accepted it (not from when the connection was started), with its source named in the status,
the audit entry and the Connections page; the 14-day warning runs on that date; and when the
provider does not say, the date is an estimate from the connection's start and says so."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from connectors.gocardless import GoCardlessClient
from connectors.sandbox.serve import RunningServer
from recon.db.models import AuditEntry, SourceAccount, Tenant
from recon.db.tenancy import admin_session, tenant_session
from recon.errors import NotFoundError
from recon.review import connections as service
from recon.review.connection_views import AgreementLike, ConsentState
from tests.integration.gocardless_fixtures import (
    SECRET_ID,
    SECRET_KEY,
    TENANT,
    FakeClock,
    bad_state,
    bank_seed,
    clock,
    gc_server,
    payments_state,
)
from tests.integration.test_bank_connections import (
    ADMIN,
    FIN,
    ING,
    REDIRECT,
    Bank,
    _consent,
    bank,
    client,
)
from tests.ui.apptest import open_app, point_at
from tests.ui.seed import seed

__all__ = ["bad_state", "bank", "bank_seed", "client", "clock", "gc_server", "payments_state"]

DAYS = 120
WAITED = dt.timedelta(days=2, hours=5)  # the account holder consents this long after the start


def _connect(bank: Bank, directory: Any) -> tuple[str, dt.datetime]:
    """Start a connection, let the account holder consent WAITED later, link the accounts;
    the requisition id and the moment of consent (the sandbox's clock)."""
    started = service.start_connection(
        bank.app, ADMIN, TENANT, directory, country="NL", institution_id=ING,
        redirect=REDIRECT, access_valid_for_days=DAYS,
    )  # fmt: skip
    bank.clock.advance(seconds=WAITED.total_seconds())
    consented = bank.clock.now
    _consent(started.link)
    service.link_accounts(bank.app, ADMIN, TENANT, directory, started.requisition_id)
    return started.requisition_id, consented


def _started_at(engine: Engine, requisition: str) -> dt.datetime:
    with tenant_session(engine, TENANT) as session:
        entry = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == service.STARTED, AuditEntry.entity_id == requisition
            )
        ).one()
        return entry.occurred_at.replace(tzinfo=dt.UTC)


def _linked_details(engine: Engine, requisition: str) -> dict[str, Any]:
    with tenant_session(engine, TENANT) as session:
        entry = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == service.LINKED, AuditEntry.entity_id == requisition
            )
        ).one()
        return dict(entry.details)


def test_the_consent_ends_access_valid_for_days_after_the_account_holder_accepted(
    bank: Bank, client: GoCardlessClient
) -> None:
    requisition, consented = _connect(bank, client)
    agreement = client.get_agreement(client.get_requisition(requisition).agreement)
    assert agreement.accepted is not None and agreement.access_valid_for_days == DAYS
    end = consented + dt.timedelta(days=DAYS)
    assert end != _started_at(bank.app, requisition) + dt.timedelta(days=DAYS)

    status = service.connection_status(bank.app, FIN, TENANT, now=consented)
    assert status.accounts
    for account in status.accounts:
        assert account.consent_expires_at == end
        assert account.consent is ConsentState.OK and account.days_left == DAYS
        assert account.consent_basis == (
            f"GoCardless agreement {agreement.id}: accepted "
            f"{consented:%Y-%m-%d %H:%M} UTC, valid {DAYS} days"
        )
    details = _linked_details(bank.app, requisition)
    assert set(details["consent_basis"].values()) == {status.accounts[0].consent_basis}
    assert set(details["consent_expires_at"].values()) == {end.isoformat()}

    # the warning runs on the provider's date: from 14 days before it, not a day earlier
    calm = service.connection_status(
        bank.app, FIN, TENANT, now=end - dt.timedelta(days=14, seconds=1)
    )
    assert {a.consent for a in calm.accounts} == {ConsentState.OK} and not calm.warnings
    near = service.connection_status(bank.app, FIN, TENANT, now=end - dt.timedelta(days=14))
    assert {a.consent for a in near.accounts} == {ConsentState.EXPIRING}
    assert all(f"ends on {end:%Y-%m-%d} (14 days left)" in w for w in near.warnings)
    gone = service.connection_status(bank.app, FIN, TENANT, now=end)
    assert {a.consent for a in gone.accounts} == {ConsentState.EXPIRED}


class _Silent:
    """The client, except that the agreement cannot be read (the provider does not say)."""

    def __init__(self, client: GoCardlessClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_agreement(self, agreement_id: str) -> AgreementLike:
        raise NotFoundError(f"agreement {agreement_id} could not be read")


def test_without_the_providers_date_the_estimate_counts_from_the_start_and_says_so(
    bank: Bank, client: GoCardlessClient
) -> None:
    requisition, consented = _connect(bank, _Silent(client))
    start = _started_at(bank.app, requisition)
    status = service.connection_status(bank.app, FIN, TENANT, now=consented)
    assert {a.consent_expires_at for a in status.accounts} == {start + dt.timedelta(days=DAYS)}
    assert {a.consent_basis for a in status.accounts} == {
        f"estimated: {DAYS} days from the connection's start on {start:%Y-%m-%d} "
        "(the provider did not say when consent was given)"
    }
    # linking again once the provider answers replaces the estimate with the real date
    service.link_accounts(bank.app, ADMIN, TENANT, client, requisition)
    status = service.connection_status(bank.app, FIN, TENANT, now=consented)
    assert {a.consent_expires_at for a in status.accounts} == {consented + dt.timedelta(days=DAYS)}
    assert all((a.consent_basis or "").startswith("GoCardless agreement") for a in status.accounts)


@pytest.fixture
def page_db(
    sqlite_engine: Engine,
    sqlite_url: str,
    gc_server: RunningServer,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Engine, FakeClock]]:
    """The UI's seeded database, tenant acme reading the sandbox, the sandbox's clock at now."""
    seed(sqlite_engine)
    point_at(monkeypatch, sqlite_url)
    with admin_session(sqlite_engine) as session:
        tenant = session.get(Tenant, "acme")
        assert tenant is not None
        tenant.settings = {"gocardless": {"enabled": True, "base_url": gc_server.url}}
    monkeypatch.setenv("RECON_SECRET_ACME__GOCARDLESS_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("RECON_SECRET_ACME__GOCARDLESS_SECRET_KEY", SECRET_KEY)
    clock.now = dt.datetime.now(dt.UTC)  # the page reads the status as of the real now
    yield sqlite_engine, clock


def test_the_connections_page_says_where_the_consent_date_comes_from(
    page_db: tuple[Engine, FakeClock],
) -> None:
    engine, clock = page_db
    accepted = clock.now - dt.timedelta(days=DAYS - 10)  # consented long ago: 10 days left
    clock.now = accepted
    app = open_app(ADMIN, "connections")
    app.text_input(key="conn_country").input("NL")
    app.button(key="conn_find").click().run()
    app.selectbox(key="conn_bank").set_value(ING).run()
    app.number_input(key="conn_access").set_value(DAYS).run()
    app.button(key="conn_start").click().run()
    assert not app.exception, app.exception
    link = app.code[0].value
    _consent(link)
    app.button(key="conn_link").click().run()
    assert not app.exception, app.exception
    with tenant_session(engine, "acme") as session:
        ends = set(session.scalars(select(SourceAccount.consent_expires_at)))
    end = accepted + dt.timedelta(days=DAYS)
    assert {e.replace(tzinfo=dt.UTC) for e in ends if e is not None} == {end}
    accounts = app.dataframe[0].value
    assert set(accounts["consent date from"].str.startswith("GoCardless agreement")) == {True}
    assert all(f"accepted {accepted:%Y-%m-%d}" in b for b in accounts["consent date from"])
    assert all("expiring" in c for c in accounts["consent"])
    assert any(f"ends on {end:%Y-%m-%d}" in w.value for w in app.warning)
