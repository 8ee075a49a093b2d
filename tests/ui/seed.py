"""Test data for the UI and its read services: a small, known set of rows written through the
models (transactions, invoices, allocations with a reversal, exceptions, runs, audit entries)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Engine

from recon import audit
from recon.db.base import utcnow
from recon.db.models import (
    Allocation,
    Invoice,
    QuarantinedRow,
    ReconException,
    Run,
    Transaction,
    ValidationResult,
)
from recon.db.tenancy import admin_session, tenant_session
from recon.review.access import Role
from recon.tenants import TenantSettings, add_tenant
from tests.people import make_user

DAY = dt.date(2026, 10, 1)
FINANCE = "fin@acme.test"
AUDITOR = "aud@acme.test"
ADMIN = "adm@acme.test"
OUTSIDER = "fin@globex.test"


def _tx(n: int, source: str, amount: int, day: dt.date, payer: str) -> Transaction:
    return Transaction(
        tenant_id="acme",
        source=source,
        account_ref="acct",
        source_id=f"t{n}",
        kind="payment",
        booked_on=day,
        amount_minor=amount,
        currency="EUR",
        counterparty=payer,
        reference=f"INV-{n}",
    )


def _alloc(n: int, tx: int, invoice: str, amount: int, **extra: object) -> Allocation:
    values: dict[str, object] = {
        "tenant_id": "acme",
        "allocation_key": f"{n:064d}",
        "transaction_ref": f"bank:acct:t{tx}",
        "invoice_id": invoice,
        "amount_minor": amount,
        "currency": "EUR",
        "rule": "exact_reference",
        "confidence": 100,
        "decision": "auto",
    }
    values.update(extra)
    return Allocation(**values)


def seed(engine: Engine, owner: Engine | None = None) -> None:
    """Tenants acme and globex (registered by `owner`, default `engine`), four users, and acme's
    books (see the module docstring)."""
    with admin_session(owner or engine) as session:
        for tenant in ("acme", "globex"):
            add_tenant(session, tenant, tenant.title(), TenantSettings(), actor="test")
    make_user(engine, FINANCE, Role.FINANCE, ("acme",))
    make_user(engine, AUDITOR, Role.AUDITOR, ("acme",))
    make_user(engine, ADMIN, Role.ADMIN, ("acme", "globex"))
    make_user(engine, OUTSIDER, Role.FINANCE, ("globex",))
    now = utcnow()
    run_id = str(uuid.uuid4())
    with tenant_session(engine, "acme") as session:
        session.add_all(
            [
                _tx(1, "bank", 10_000, DAY, "Alice Ltd"),
                _tx(2, "bank", 5_000, DAY, "Bob GmbH"),
                _tx(3, "stripe", 2_500, DAY + dt.timedelta(days=1), "=cmd|' /C calc'!A0"),
                _tx(4, "bank", 7_000, DAY + dt.timedelta(days=1), "Carol SA"),
            ]
        )
        for n, balance in ((1, 0), (2, 0), (3, 7_000)):
            session.add(
                Invoice(
                    tenant_id="acme",
                    invoice_id=str(100 + n),
                    invoice_num=f"INV-{n}",
                    client_id=str(n),
                    client_name=f"Client {n}",
                    issued_on=DAY - dt.timedelta(days=10),
                    total_minor=10_000 if n == 1 else 5_000 if n == 2 else 7_000,
                    balance_minor=balance,
                    currency="EUR",
                    status="Unpaid" if balance else "Paid",
                )
            )
        session.add_all([_alloc(1, 1, "101", 10_000), _alloc(2, 2, "102", 5_000)])
        session.flush()
        manual = _alloc(3, 4, "103", 7_000, decision="manual", origin="manual", rule="manual",
                        created_by=FINANCE)  # fmt: skip
        session.add(manual)
        session.flush()
        reversed_one = _alloc(4, 4, "103", -7_000, decision="manual", origin="manual",
                              rule="manual", reverses_id=manual.id, created_by=FINANCE)  # fmt: skip
        session.add(reversed_one)
        session.add(_alloc(5, 4, "103", 3_000, decision="manual", origin="manual", rule="manual",
                           created_by=FINANCE))  # fmt: skip
        for n, (kind, age_days) in enumerate((("unmatched_payment", 2), ("ambiguous", 40))):
            session.add(
                ReconException(
                    tenant_id="acme",
                    exception_key=f"{n:064x}",
                    kind=kind,
                    transaction_ref="stripe:acct:t3",
                    amount_minor=2_500,
                    currency="EUR",
                    detail="no invoice",
                    created_at=now - dt.timedelta(days=age_days),
                )
            )
        session.add(
            Run(
                tenant_id="acme",
                id=run_id,
                window_from=DAY,
                window_to=DAY + dt.timedelta(days=1),
                sources=["bank"],
                status="completed",
                started_at=now - dt.timedelta(minutes=5),
                finished_at=now - dt.timedelta(minutes=4),
                counts={"transactions": 4, "allocations_auto": 2, "exceptions": 2},
            )
        )
        session.flush()
        session.add(
            ValidationResult(
                tenant_id="acme",
                run_id=run_id,
                dataset="transactions",
                suite="transactions",
                success=False,
                rows_evaluated=5,
                rows_failed=1,
                result={
                    "results": [
                        {
                            "success": False,
                            "expectation_config": {
                                "type": "expect_column_values_to_not_be_null",
                                "kwargs": {"column": "currency"},
                            },
                        }
                    ]
                },
            )
        )
        session.add(
            QuarantinedRow(
                tenant_id="acme",
                run_id=run_id,
                provider="bank",
                dataset="transactions",
                row_key="bad-1",
                reasons=["currency: missing"],
            )
        )
        session.add(
            Run(
                tenant_id="acme",
                id=str(uuid.uuid4()),
                window_from=DAY,
                window_to=DAY,
                status="running",
                started_at=now - dt.timedelta(hours=7),
            )
        )
        audit.append(
            session, actor=FINANCE, action="allocation.manual", entity="allocation",
            entity_id="3", details={"note": "paid by phone"},
        )  # fmt: skip
