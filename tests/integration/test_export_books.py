"""A tenant's books whose every report figure is known (fixtures only, no tests).

Bank account `bank-1` (EUR), October 2026: a credit allocated by the engine, a credit from a
payer named `=HYPERLINK("x")` allocated in part by a person, a Stripe payout's credit, a
credit a person resolved as not a customer payment, an allocation the engine reversed, and an
outgoing line. Stripe: two charges (one with a fee) paid out together, and a refund. WHMCS
recorded one payment the money confirms and one nobody paid.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from recon.canonical import transaction_ref
from recon.db.models import (
    Allocation,
    Match,
    Payout,
    PayoutLine,
    QuarantinedRow,
    ReconException,
    RecordedPayment,
    Run,
    Transaction,
    ValidationResult,
)
from recon.db.tenancy import admin_session, tenant_session
from recon.tenants import TenantSettings, add_tenant

TENANT = "acme"
OTHER = "globex"
FROM, TO = dt.date(2026, 10, 1), dt.date(2026, 10, 31)
FORMULA = '=HYPERLINK("x")'
AT = dt.datetime(2026, 11, 2, 9, 0, 0)


def _txn(source: str, account: str, sid: str, day: int, amount: int, **kw: object) -> Transaction:
    values: dict[str, object] = {"kind": "payment", "fee_minor": 0, "currency": "EUR"}
    values["booked_on"] = dt.date(2026, 10, day)
    values.update(kw)
    return Transaction(
        tenant_id=TENANT,
        source=source,
        account_ref=account,
        source_id=sid,
        amount_minor=amount,
        **values,
    )


def _alloc(key: str, ref: str, invoice: str, amount: int, **kw: object) -> Allocation:
    values: dict[str, object] = {"rule": "reference_exact", "confidence": 100, "decision": "auto"}
    values.update(kw)
    return Allocation(
        tenant_id=TENANT,
        allocation_key=key.ljust(64, "0"),
        transaction_ref=ref,
        invoice_id=invoice,
        amount_minor=amount,
        currency="EUR",
        created_at=AT,
        **values,
    )


def bank_ref(sid: str) -> str:
    return transaction_ref("bank", "bank-1", sid)


def stripe_ref(sid: str) -> str:
    return transaction_ref("stripe", "acct_1", sid)


def seed_books(engine: Engine) -> None:
    """Write the books above for tenant acme (the tenant must exist)."""
    with tenant_session(engine, TENANT) as s:
        s.add_all([
            _txn("bank", "bank-1", "t1", 2, 10000, counterparty="Alice Example", reference="INV 1"),
            _txn("bank", "bank-1", "t2", 3, 5000, counterparty=FORMULA, reference="+cmd|' /C calc'!A0"),
            _txn("bank", "bank-1", "t3", 10, 20000, counterparty="STRIPE PAYMENTS", reference="po_1"),
            _txn("bank", "bank-1", "t4", 12, 1000, counterparty="Tax office", reference="refund"),
            _txn("bank", "bank-1", "t5", 13, -500, counterparty="Landlord"),
            _txn("bank", "bank-1", "t6", 14, 4000, counterparty="Bob", reference="INV 3"),
            _txn("bank", "bank-1", "t7", 15, 999, status="pending", counterparty="Pending"),
            _txn("bank", "bank-1", "t8", 3, 777, booked_on=dt.date(2026, 11, 3)),
            _txn("stripe", "acct_1", "txn_1", 5, 12000, kind="charge", fee_minor=300,
                 counterparty="Carol", charge_id="ch_1", payout_id="po_1"),
            _txn("stripe", "acct_1", "txn_2", 6, 8300, kind="charge", counterparty="Dan",
                 payout_id="po_1"),
            _txn("stripe", "acct_1", "txn_3", 20, -2000, kind="refund", counterparty="Carol"),
        ])  # fmt: skip
        s.add(Payout(tenant_id=TENANT, source="stripe", payout_id="po_1",
                     arrival_on=dt.date(2026, 10, 10), amount_minor=20000, currency="EUR",
                     status="paid"))  # fmt: skip
        s.add_all([
            PayoutLine(tenant_id=TENANT, source="stripe", payout_id="po_1", transaction_id="txn_1"),
            PayoutLine(tenant_id=TENANT, source="stripe", payout_id="po_1", transaction_id="txn_2"),
        ])  # fmt: skip
        s.add(Match(tenant_id=TENANT, match_key="m1".ljust(64, "0"), kind="payout_bank",
                    left_ref="po_1", right_ref=bank_ref("t3"), rule="payout_amount_date",
                    confidence=100, amount_minor=20000, currency="EUR"))  # fmt: skip
        s.add_all([
            RecordedPayment(tenant_id=TENANT, whmcs_txn_id="w1", invoice_id="4",
                            recorded_on=dt.date(2026, 10, 5), amount_minor=12000, currency="EUR",
                            gateway="stripe", transid="ch_1"),
            RecordedPayment(tenant_id=TENANT, whmcs_txn_id="w2", invoice_id="5",
                            recorded_on=dt.date(2026, 10, 8), amount_minor=7000, currency="EUR",
                            gateway="banktransfer"),
        ])  # fmt: skip
        s.add_all([
            _alloc("a1", bank_ref("t1"), "1", 10000),
            _alloc("a2", bank_ref("t2"), "2", 3000, rule="manual", decision="manual",
                   origin="manual", created_by="fin@acme.test", note="customer phoned"),
            _alloc("a3", bank_ref("t6"), "3", 4000),
            _alloc("a4", stripe_ref("txn_1"), "4", 12000, rule="recorded_transid"),
            _alloc("a5", stripe_ref("txn_2"), "6", 8300, decision="review", confidence=70,
                   rule="payer_amount"),
        ])  # fmt: skip
        s.flush()
        original = s.query(Allocation).filter_by(invoice_id="3").one()
        s.add(_alloc("a6", bank_ref("t6"), "3", -4000, reverses_id=original.id))
        s.add_all([
            ReconException(tenant_id=TENANT, exception_key="e1".ljust(64, "0"), kind="overpayment",
                           transaction_ref=bank_ref("t2"), invoice_id="2", amount_minor=2000,
                           currency="EUR", detail="paid 20.00 more", created_at=AT),
            ReconException(tenant_id=TENANT, exception_key="e2".ljust(64, "0"),
                           kind="unmatched_payment", transaction_ref=bank_ref("t4"),
                           amount_minor=1000, currency="EUR", status="resolved",
                           resolution_kind="not_customer", resolution="tax refund",
                           resolved_by="fin@acme.test", resolved_at=AT, created_at=AT),
            ReconException(tenant_id=TENANT, exception_key="e3".ljust(64, "0"),
                           kind="unbacked_payment", subject_ref="w2", invoice_id="5",
                           amount_minor=7000, currency="EUR", detail="WHMCS payment w2 unbacked",
                           created_at=AT),
        ])  # fmt: skip
        s.add(QuarantinedRow(tenant_id=TENANT, provider="gocardless", dataset="transactions",
                             account_ref="bank-1", row_key="bad-1",
                             booked_on=dt.date(2026, 10, 7), amount_minor=123, currency="EUR",
                             reasons=["currency 'EURO' is not ISO 4217"], created_at=AT))  # fmt: skip
        s.add(Run(tenant_id=TENANT, id="run-1", window_from=FROM, window_to=TO,
                  status="completed", started_at=AT))  # fmt: skip
        s.flush()
        s.add(ValidationResult(tenant_id=TENANT, run_id="run-1", dataset="transactions",
                               suite="bank", success=False, rows_evaluated=10, rows_failed=1,
                               created_at=AT))  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def books(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The application's engine on a database holding the books (acme) and an empty globex."""
    if request.param == "sqlite":
        owner = app = request.getfixturevalue("sqlite_engine")
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
    monkeypatch.setenv("RECON_SECRET_AUDIT_EXPORT_SIGNING_KEY", secrets.token_hex(32))
    with admin_session(owner) as session:
        for tenant in (TENANT, OTHER):
            add_tenant(session, tenant, tenant.title(), TenantSettings(), actor="test")
    seed_books(app)
    yield app
