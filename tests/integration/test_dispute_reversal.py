"""A won dispute gives the money back to the merchant, but it is no customer's payment.

Stripe books a won dispute as two balance transactions of the charge (the withdrawal and its
reversal), both quoting the charge's invoice. The engine must never allocate either to an
invoice: the charge itself already paid it. Real Stripe sandbox over HTTP, SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from connectors.sandbox.stripe import balance_transaction_id
from connectors.stripe import StripeClient
from recon.db.models import Invoice, RecordedPayment, Run, Transaction
from recon.db.tenancy import admin_session, tenant_session
from recon.matching.config import MatchConfig
from recon.tenants import TenantSettings, add_tenant
from tasks.decisions import live_allocations
from tasks.normalise_stripe import sync_window
from tasks.reconcile import build_frames, reconcile_window, run_engine
from tests.integration.stripe_fixtures import (
    ACCOUNT,
    TENANT,
    WINDOW,
    World,
    sleep,
    stripe_client,
    stripe_server,
    stripe_state,
    world,
)

__all__ = ["sleep", "stripe_client", "stripe_server", "stripe_state", "world"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated database with the tenant, as the application connects to it."""
    if request.param == "sqlite":
        owner = app = request.getfixturevalue("sqlite_engine")
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
    with admin_session(owner) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    yield app


def test_a_won_disputes_withdrawal_and_reversal_are_never_allocated(
    engine: Engine, world: World, stripe_client: StripeClient
) -> None:
    sync_window(engine, TENANT, stripe_client, ACCOUNT, *WINDOW)
    won = world.disputes[world.disputes["status"] == "won"].to_dict("records")
    assert won
    dispute_refs = {
        f"stripe:{ACCOUNT}:{balance_transaction_id(d['dispute_id'], reversal=r)}"
        for d in won
        for r in (False, True)
    }
    with tenant_session(engine, TENANT) as session:
        loaded = {
            f"stripe:{ACCOUNT}:{t.source_id}": t
            for t in session.scalars(select(Transaction).where(Transaction.kind == "dispute"))
        }
        assert dispute_refs <= set(loaded)
        charges = {d["charge_id"]: d for d in won}
        for n, charge in enumerate(world.charges.to_dict("records")):
            if charge["charge_id"] not in charges:
                continue
            amount, currency = int(charge["amount_minor"]), str(charge["currency"]).upper()
            invoice_id = charge["invoice_id"] if isinstance(charge["invoice_id"], str) else None
            invoice_id = invoice_id or str(95_000 + n)
            # WHMCS recorded the charge; as much again is due, so the reversal (same amount,
            # same invoice quoted, same payer) would fit the invoice exactly.
            session.add(
                Invoice(
                    tenant_id=TENANT,
                    invoice_id=invoice_id,
                    invoice_num=invoice_id,
                    client_id=str(700 + n),
                    client_name=charge["customer_name"],
                    issued_on=charge["created"].date(),
                    total_minor=2 * amount,
                    balance_minor=amount,
                    currency=currency,
                    status="Unpaid",
                )
            )
            session.add(
                RecordedPayment(
                    tenant_id=TENANT,
                    whmcs_txn_id=str(85_000 + n),
                    invoice_id=invoice_id,
                    recorded_on=charge["created"].date(),
                    amount_minor=amount,
                    fees_minor=0,
                    currency=currency,
                    gateway="stripe",
                    transid=charge["charge_id"],
                )
            )
        frames, _ = build_frames(session, WINDOW)
    result = run_engine(frames, MatchConfig())
    allocated = set(result.allocations["transaction_id"])
    assert not allocated & dispute_refs
    assert allocated  # the charges themselves are still confirmed

    run_id = str(uuid.uuid4())
    with tenant_session(engine, TENANT) as session:
        session.add(Run(id=run_id, tenant_id=TENANT, window_from=WINDOW[0], window_to=WINDOW[1]))
    reconcile_window(engine, TENANT, WINDOW, run_id=run_id)
    with tenant_session(engine, TENANT) as session:
        stored = {a.transaction_ref for a in live_allocations(session)}
    assert stored and not stored & dispute_refs
