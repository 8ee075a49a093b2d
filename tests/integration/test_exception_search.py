"""The queue's free-text search reads the payer and reference kept on the exception row
(revision 0011): the engine writes them when it opens an exception, migration 0011 fills them in
for rows stored before it (under forced row-level security on PostgreSQL), and the search finds
an exception by them without the transactions table. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select, text

from recon.db import migrate
from recon.db.engine import make_engine
from recon.db.models import Invoice, ReconException, Transaction
from recon.db.tenancy import admin_session, tenant_session
from recon.review.queue import list_exceptions
from recon.review.views import QueueFilter
from recon.tenants import TenantSettings, add_tenant
from tasks.reconcile import reconcile_window
from tests.people import backend_with_finance

T, FIN = "acme", "fin@acme.test"
D = dt.date
WINDOW = (D(2026, 10, 1), D(2026, 10, 7))


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The application engine of a database with tenant acme and a finance user."""
    engine = backend_with_finance(request, T, FIN)
    yield engine


def _payments(engine: Engine) -> None:
    """p1 pays invoice 5001 exactly (allocated); p2 quotes nothing usable (an exception)."""
    with tenant_session(engine, T) as session:
        session.add(Invoice(invoice_id="5001", invoice_num="5001", client_id="7",
                            client_name="Jane Doe", issued_on=D(2026, 9, 20),
                            due_on=D(2026, 10, 4), total_minor=12345, balance_minor=12345,
                            currency="EUR", status="Unpaid"))  # fmt: skip
        for source_id, payer, reference in (
            ("p1", "Jane Doe", "Invoice 5001"),
            ("p2", "Unknown Payer Ltd", "thanks 50%_off"),
        ):
            session.add(Transaction(source="bank", account_ref="acc", source_id=source_id,
                                    booked_on=D(2026, 10, 2), amount_minor=12345,
                                    currency="EUR", counterparty=payer,
                                    reference=reference))  # fmt: skip


def _found(engine: Engine, search: str) -> list[str | None]:
    page = list_exceptions(engine, FIN, T, QueueFilter(search=search, status=None))
    return [item.transaction_ref for item in page.items]


def test_the_engine_keeps_the_payer_and_reference_on_the_exceptions_it_opens(app: Engine) -> None:
    _payments(app)
    reconcile_window(app, T, WINDOW, run_id="run-1")
    with tenant_session(app, T) as session:
        stored = session.execute(
            select(
                ReconException.payer, ReconException.reference, ReconException.search_text
            ).where(ReconException.transaction_ref == "bank:acc:p2")
        ).all()
    assert stored and set(stored) == {
        ("Unknown Payer Ltd", "thanks 50%_off", "unknown payer ltd\nthanks 50%_off")
    }
    assert set(_found(app, "unknown PAYER")) == {"bank:acc:p2"}
    assert set(_found(app, "50%_off")) == {"bank:acc:p2"}
    assert _found(app, "50%x") == []  # % and _ are matched literally
    assert _found(app, "Jane") == []  # p1 was allocated: no exception about it


def test_the_search_reads_the_exception_row_not_the_transactions(app: Engine) -> None:
    _payments(app)
    reconcile_window(app, T, WINDOW, run_id="run-1")
    with tenant_session(app, T) as session:
        session.execute(delete(Transaction).where(Transaction.source_id == "p2"))
    assert set(_found(app, "thanks")) == {"bank:acc:p2"}
    page = list_exceptions(app, FIN, T, QueueFilter(search="thanks", status=None))
    assert {(i.payer, i.reference) for i in page.items} == {("Unknown Payer Ltd", "thanks 50%_off")}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_migration_fills_rows_stored_before_it_and_downgrades(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if dialect == "sqlite":
        owner = make_engine(f"sqlite:///{tmp_path / 'recon.db'}")
        migrate.upgrade(owner, "0010")
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        migrate.downgrade(owner, "0010")
    with admin_session(owner) as session:
        for tenant in (T, "globex"):
            add_tenant(session, tenant, tenant.title(), TenantSettings(), actor="test")
    for tenant, payer in ((T, "Jane Doe"), ("globex", "MAX Müller")):
        with tenant_session(owner, tenant) as session:
            session.add(Transaction(source="bank", account_ref="acc", source_id="x:1",
                                    booked_on=D(2026, 10, 2), amount_minor=100, currency="EUR",
                                    counterparty=payer, reference=f"{tenant} ref"))  # fmt: skip
        with owner.begin() as conn:
            if dialect == "postgresql":
                conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})
            for key, ref in (("1", "bank:acc:x:1"), ("2", "bank:acc:gone"), ("3", None)):
                conn.execute(
                    text(
                        "INSERT INTO exceptions (tenant_id, exception_key, kind, transaction_ref, "
                        "detail, status, version) VALUES (:t, :k, 'unmatched_payment', :r, '', "
                        "'open', 1)"
                    ),
                    {"t": tenant, "k": key * 64, "r": ref},
                )
    migrate.upgrade(owner)
    for tenant, payer in ((T, "Jane Doe"), ("globex", "MAX Müller")):
        with tenant_session(owner, tenant) as session:
            filled = session.execute(
                select(ReconException.exception_key, ReconException.payer,
                       ReconException.reference, ReconException.search_text,
                       ReconException.version)
                .order_by(ReconException.exception_key)
            ).all()  # fmt: skip
        assert [tuple(r) for r in filled] == [
            ("1" * 64, payer, f"{tenant} ref", f"{payer.lower()}\n{tenant} ref", 1),
            ("2" * 64, None, None, None, 1),
            ("3" * 64, None, None, None, 1),
        ]
    migrate.downgrade(owner, "0010")
    with owner.connect() as conn:
        columns = conn.execute(text("SELECT * FROM exceptions")).keys()
    assert not {"payer", "reference", "search_text"} & set(columns)
    migrate.upgrade(owner)
    if dialect == "sqlite":
        owner.dispose()
