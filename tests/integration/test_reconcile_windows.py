"""Windows cut next to a WHMCS payment: the money just before the cut confirms the payment staff
recorded just after it, once, as one run over both windows does (SQLite and PostgreSQL, the
engine's storage running as the application role)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from recon.db.models import Invoice, RecordedPayment, Transaction
from recon.db.tenancy import admin_session, tenant_session
from recon.tenants import TenantSettings, add_tenant
from tasks.reconcile import reconcile_window

UNION_TENANT, SPLIT_TENANT = "acme", "acme-split"  # the same books, decided two ways
D = dt.date
UNION = (D(2026, 9, 25), D(2026, 10, 10))
SPLIT = [(D(2026, 9, 25), D(2026, 10, 1)), (D(2026, 10, 2), D(2026, 10, 10))]


@pytest.fixture(params=["sqlite", "postgresql"])
def engines(request: pytest.FixtureRequest) -> Iterator[tuple[Engine, Engine]]:
    """(owner, application) engines on a migrated database of each backend."""
    if request.param == "sqlite":
        engine = request.getfixturevalue("sqlite_engine")
        yield engine, engine
    else:
        yield request.getfixturevalue("pg_owner_engine"), request.getfixturevalue("pg_app_engine")


def _books(owner: Engine, app: Engine, tenant: str) -> None:
    """One invoice WHMCS shows paid by a bank transfer recorded on 10-02, the transfer that
    paid it (10-01), and the same transfer sent again by the customer (10-04)."""
    with admin_session(owner) as session:
        add_tenant(session, tenant, "Acme", TenantSettings(), actor="test")
    with tenant_session(app, tenant) as session:
        session.add(
            Invoice(
                invoice_id="5001", invoice_num="5001", client_id="7", client_name="Jane Doe",
                issued_on=D(2026, 9, 20), due_on=D(2026, 10, 4), total_minor=10000,
                balance_minor=0, currency="EUR", status="Paid",
            )
        )  # fmt: skip
        session.add(
            RecordedPayment(
                whmcs_txn_id="w1", invoice_id="5001", recorded_on=D(2026, 10, 2),
                amount_minor=10000, currency="EUR", gateway="banktransfer", transid=None,
            )
        )  # fmt: skip
        for source_id, booked in (("p1", D(2026, 10, 1)), ("p2", D(2026, 10, 4))):
            session.add(
                Transaction(
                    source="bank", account_ref="acc", source_id=source_id, booked_on=booked,
                    amount_minor=10000, currency="EUR", counterparty="Jane Doe",
                    reference="Invoice 5001",
                )
            )  # fmt: skip


def _live(engine: Engine, tenant: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT transaction_ref, invoice_id, amount_minor, rule, decision "
                "FROM allocations a WHERE a.tenant_id = :t AND a.reverses_id IS NULL AND NOT "
                "EXISTS (SELECT 1 FROM allocations r WHERE r.reverses_id = a.id)"
            ),
            {"t": tenant},
        ).all()
    return sorted(tuple(row) for row in rows)


def test_a_recorded_payment_across_the_cut_is_confirmed_once(
    engines: tuple[Engine, Engine],
) -> None:
    owner, app = engines
    for tenant in (UNION_TENANT, SPLIT_TENANT):
        _books(owner, app, tenant)
    reconcile_window(app, UNION_TENANT, UNION, run_id="union")
    for window in SPLIT:
        reconcile_window(app, SPLIT_TENANT, window, run_id=f"split {window[0]}")
    union = _live(owner, UNION_TENANT)
    confirmations = [row for row in union if row[3].startswith("recorded_")]
    assert [row[0] for row in confirmations] == ["bank:acc:p1"]
    assert _live(owner, SPLIT_TENANT) == union
