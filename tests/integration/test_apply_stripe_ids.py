"""Write-back of Stripe payments under the ids WHMCS knows them by.

A Stripe row is one balance transaction (`txn_...`); WHMCS and its Stripe module record the
payment under the charge (`ch_...`) or its payment intent (`pi_...`). Apply writes the charge id
as the WHMCS transid, finds a payment WHMCS holds under any of the three ids instead of adding
it again, and keys its exactly-once ledger by the same id on every run. The real pipeline
against the sandbox, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, select

from connectors.http import ProviderRejectedError
from connectors.runtime import Runtime
from connectors.sandbox.serve import run_in_thread
from connectors.sandbox.synth import SynthConfig, generate
from connectors.sandbox.world import SandboxWorld, world_as_of
from recon.db.models import AppliedPayment, ReconException, Transaction
from recon.db.tenancy import tenant_session
from recon.money import format_amount
from recon.settings import get_settings
from tasks.apply import PlannedPayment, plan_payments
from tests.integration import test_apply_recorded as recorded
from tests.integration.test_apply_recorded import (
    AS_OF,
    TENANT,
    Books,
    Urls,
    overpaid,
    whmcs_payments,
)

books = recorded.books
databases = recorded.databases


@pytest.fixture
def stripe_books(monkeypatch: pytest.MonkeyPatch) -> Iterator[Books]:
    """Books where WHMCS misses half the Stripe payments (its module did not record them)."""
    start = AS_OF - dt.timedelta(days=29)
    config = SynthConfig(
        n_invoices=160, seed=11, start=start.isoformat(), days=30, stripe_unrecorded=0.5
    )
    sandbox = SandboxWorld(
        world_as_of(generate(config), AS_OF), tenant=TENANT, as_of=AS_OF, bank_daily_limit=1000
    )
    with run_in_thread(sandbox.build_app()) as server:
        monkeypatch.setenv("RECON_VAULT_ADDR", server.url)
        monkeypatch.setenv("RECON_VAULT_ROLE_ID", sandbox.credentials.vault_role_id)
        monkeypatch.setenv("RECON_VAULT_SECRET_ID", sandbox.credentials.vault_secret_id)
        get_settings.cache_clear()
        yield Books(sandbox, server, Runtime())


def _stripe_plan(engine: Engine) -> tuple[list[PlannedPayment], dict[str, Transaction]]:
    """The Stripe payments apply plans, and the loaded charges by charge id."""
    with tenant_session(engine, TENANT) as session:
        planned = plan_payments(session, "banktransfer")
        rows = {
            t.charge_id: t
            for t in session.scalars(select(Transaction).where(Transaction.source == "stripe"))
            if t.charge_id and t.kind == "charge"
        }
    return [p for p in planned if p.gateway == "stripe"], rows


def test_stripe_payments_are_written_under_their_charge_id_once(
    stripe_books: Books, databases: Callable[[], Urls]
) -> None:
    engine = stripe_books.database(*databases())
    stripe_books.reconcile(engine)
    stripe, rows = _stripe_plan(engine)
    assert stripe  # the books hold Stripe money WHMCS does not have
    assert all(p.transid.startswith("ch_") and p.transid in rows for p in stripe)
    before = whmcs_payments(stripe_books.whmcs)
    report = stripe_books.apply(engine)
    assert report.failed == []
    added = [p for p in whmcs_payments(stripe_books.whmcs) if p not in before]
    assert {(i, t) for i, _, t, _ in added} >= {(int(p.invoice_id), p.transid) for p in stripe}
    assert not [t for _, _, t, _ in added if t.startswith(("txn_", "pi_"))]
    with tenant_session(engine, TENANT) as session:
        keys = {(r.invoice_id, r.transid) for r in session.scalars(select(AppliedPayment))}
        assert {(p.invoice_id, p.transid) for p in stripe} <= keys
        # The next run plans nothing: the ledger key is the same id.
        assert plan_payments(session, "banktransfer") == []
    stripe_books.reconcile(engine)
    again = stripe_books.apply(engine)
    assert (again.planned, again.applied) == ([], 0)
    assert overpaid(stripe_books.whmcs) == []
    engine.dispose()


def test_a_stripe_payment_whmcs_holds_under_any_of_its_ids_is_found_not_added(
    stripe_books: Books, databases: Callable[[], Urls]
) -> None:
    engine = stripe_books.database(*databases())
    stripe_books.reconcile(engine)
    stripe, rows = _stripe_plan(engine)
    assert len(stripe) >= 2
    # WHMCS's Stripe module (or a person) recorded each payment under its payment intent, or
    # under its balance transaction id, after the run loaded WHMCS.
    with stripe_books.client() as client:
        for n, p in enumerate(stripe):
            row = rows[p.transid]
            transid = row.payment_intent if n % 2 == 0 else row.source_id
            assert transid
            client.call(
                "AddInvoicePayment",
                {
                    "invoiceid": p.invoice_id,
                    "transid": transid,
                    "gateway": "stripe",
                    "date": f"{p.paid_on.isoformat()} 00:00:00",
                    "amount": format_amount(p.amount_minor, p.currency),
                },
                idempotent=False,
                record=False,
            )
    before = whmcs_payments(stripe_books.whmcs)
    report = stripe_books.apply(engine)
    after = whmcs_payments(stripe_books.whmcs)
    added = [p for p in after if p not in before]
    assert not {(i, t) for i, _, t, _ in added} & {(int(p.invoice_id), p.transid) for p in stripe}
    assert report.failed == []
    assert overpaid(stripe_books.whmcs) == []
    with tenant_session(engine, TENANT) as session:
        found = {(r.invoice_id, r.transid): r for r in session.scalars(select(AppliedPayment))}
        for p in stripe:
            assert found[(p.invoice_id, p.transid)].state == "applied"
            assert found[(p.invoice_id, p.transid)].response["created"] is False
    engine.dispose()


def test_a_payment_whmcs_refuses_is_an_exception_and_the_rest_is_applied(
    books: Books, databases: Callable[[], Urls]
) -> None:
    engine = books.database(*databases())
    books.reconcile(engine)
    with tenant_session(engine, TENANT) as session:
        planned = plan_payments(session, "banktransfer")
    assert len(planned) >= 2
    refused = planned[0]
    # Someone cancels the invoice in WHMCS after the run: WHMCS refuses a payment to it.
    books.whmcs.set_invoice_status(int(refused.invoice_id), "Cancelled")
    with books.client() as client:
        try:
            client.call(
                "AddInvoicePayment",
                {
                    "invoiceid": refused.invoice_id,
                    "transid": "probe",
                    "gateway": "x",
                    "date": "2026-10-01 00:00:00",
                    "amount": "1.00",
                },
                idempotent=False,
                record=False,
            )
        except ProviderRejectedError as exc:
            assert "Cancelled" in str(exc)
        else:  # pragma: no cover - the sandbox must refuse as WHMCS does
            raise AssertionError("the sandbox accepted a payment to a Cancelled invoice")
    before = whmcs_payments(books.whmcs)
    report = books.apply(engine)
    added = [p for p in whmcs_payments(books.whmcs) if p not in before]
    assert [(f.invoice_id, f.transid) for f, _ in report.failed] == [
        (refused.invoice_id, refused.transid)
    ]
    assert report.applied == len(added) == len(planned) - 1 - report.already_in_whmcs
    assert int(refused.invoice_id) not in {i for i, _, _, _ in added}
    with tenant_session(engine, TENANT) as session:
        row = session.scalars(
            select(AppliedPayment).where(AppliedPayment.invoice_id == refused.invoice_id)
        ).one()
        assert row.state == "failed"
        exception = session.scalars(
            select(ReconException).where(ReconException.kind == "apply_failed")
        ).one()
        assert exception.invoice_id == refused.invoice_id
        assert "Cancelled" in exception.detail
    # A second apply leaves the refused payment to a person and adds nothing.
    again = books.apply(engine)
    assert (again.applied, again.failed) == (0, [])
    assert whmcs_payments(books.whmcs) == sorted(before + added)
    engine.dispose()
