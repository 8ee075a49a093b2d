"""A bank account linked through the connection service (`recon bank link`) is read by runs: the
run's plan takes the tenant's active GoCardless source accounts besides `gocardless.account_ids`,
and fetching it lands and loads its lines. Against the GoCardless sandbox, SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from connectors.gocardless import GoCardlessClient
from connectors.runtime import Runtime
from recon.db.models import RawFetch, SourceAccount, Transaction
from recon.db.tenancy import admin_session, tenant_session
from recon.review import connections as service
from recon.settings import get_settings
from recon.tenants import get_tenant, parse_settings
from tasks.extract import SourceContext, extract_source, linked_bank_accounts, plan_sources
from tasks.runs import finish_run, start_run
from tests.integration.gocardless_fixtures import SECRET_ID, SECRET_KEY, TENANT, WINDOW
from tests.integration.test_bank_connections import (
    ADMIN,
    ING,
    REDIRECT,
    Bank,
    bad_state,
    bank,
    bank_seed,
    client,
    clock,
    gc_server,
    payments_state,
)

__all__ = ["bad_state", "bank", "bank_seed", "client", "clock", "gc_server", "payments_state"]


def _link(bank: Bank, client: GoCardlessClient) -> list[str]:
    started = service.start_connection(
        bank.app, ADMIN, TENANT, client, country="NL", institution_id=ING, redirect=REDIRECT
    )
    with httpx.Client() as browser:
        assert browser.get(f"{started.link}/allow").status_code == 302
    linked = service.link_accounts(bank.app, ADMIN, TENANT, client, started.requisition_id)
    return [a.external_id for a in linked.accounts]


def test_the_plan_reads_linked_accounts_after_the_listed_ones_each_once(
    bank: Bank, client: GoCardlessClient
) -> None:
    assert linked_bank_accounts(bank.app, TENANT) == []
    linked = _link(bank, client)
    assert linked and linked_bank_accounts(bank.app, TENANT) == linked
    with admin_session(bank.app) as session:
        stored = parse_settings(get_tenant(session, TENANT).settings, production=False)
    listed = stored.gocardless.model_copy(update={"account_ids": ["ACC-LISTED", linked[-1]]})
    settings = stored.model_copy(update={"gocardless": listed})
    plan = plan_sources(settings, {"bank"}, linked_bank_accounts(bank.app, TENANT))
    assert [s.account_ref for s in plan] == ["ACC-LISTED", linked[-1], *linked[:-1]]
    assert {s.kind for s in plan} == {"bank"}


def test_a_withdrawn_account_is_not_read(bank: Bank, client: GoCardlessClient) -> None:
    first, *rest = _link(bank, client)
    with tenant_session(bank.app, TENANT) as session:
        row = session.scalar(select(SourceAccount).where(SourceAccount.external_id == first))
        assert row is not None
        row.status = "withdrawn"
    assert linked_bank_accounts(bank.app, TENANT) == rest


def test_a_run_fetches_and_loads_an_account_linked_through_the_service(
    bank: Bank, client: GoCardlessClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECON_SECRET_ACME__GOCARDLESS_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("RECON_SECRET_ACME__GOCARDLESS_SECRET_KEY", SECRET_KEY)
    get_settings.cache_clear()
    account = _link(bank, client)[0]
    with admin_session(bank.app) as session:
        settings = parse_settings(get_tenant(session, TENANT).settings, production=False)
    assert settings.gocardless.account_ids == []  # nobody listed it by hand
    ctx = SourceContext(bank.app, TENANT, settings, Runtime().secrets)
    plan = plan_sources(settings, {"bank"}, linked_bank_accounts(bank.app, TENANT))
    source = next(s for s in plan if s.account_ref == account)
    run_id = start_run(bank.app, TENANT, WINDOW, ["bank"])
    result = extract_source(ctx, source, WINDOW, run_id=run_id)
    finish_run(bank.app, TENANT, run_id, status="completed")
    assert not result.replayed and result.pages >= 1 and result.loaded > 0
    with tenant_session(bank.app, TENANT) as session:
        fetched = session.scalar(
            select(func.count())
            .select_from(RawFetch)
            .where(RawFetch.account_ref == account, RawFetch.dataset == "transactions")
        )
        loaded = session.scalar(
            select(func.count()).select_from(Transaction).where(Transaction.account_ref == account)
        )
    assert fetched == 1 and loaded == result.loaded
