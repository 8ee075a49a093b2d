"""People win over the engine: the real reconcile, run again over the same window after manual
work, keeps every manual allocation and reversal, treats the money a person placed as used,
never proposes again what a person reversed, and reopens nothing a person resolved (SQLite and
the PostgreSQL app role)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from recon.canonical import transaction_ref
from recon.db.models import Allocation, Invoice, ReconException, Transaction
from recon.db.tenancy import tenant_session
from recon.review.allocations import allocate, unallocate
from recon.review.ledger import live_allocations
from tasks.reconcile import reconcile_window
from tests.people import backend_with_finance

T, FIN = "acme", "fin@acme.test"
D = dt.date
WEEK1 = (D(2026, 10, 1), D(2026, 10, 7))
WEEK2 = (D(2026, 10, 8), D(2026, 10, 14))


def ref(source_id: str) -> str:
    return transaction_ref("bank", "acc", source_id)


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The application engine, a finance user, and the books of `_books`."""
    engine = backend_with_finance(request, T, FIN)
    _books(engine)
    yield engine


def _books(engine: Engine) -> None:
    """Week 1: p1 quotes invoice 5001 and pays it exactly (the engine allocates it); p2 quotes
    nothing the engine can use (unmatched). Week 2: p3 quotes invoice 5003 and pays it."""
    invoices = [("5001", "Jane Doe", "7"), ("5003", "Max Muster", "9")]
    payments = [("p1", D(2026, 10, 2), "Jane Doe", "Invoice 5001"),
                ("p2", D(2026, 10, 3), "Unknown Payer Ltd", "thanks"),
                ("p3", D(2026, 10, 9), "Max Muster", "Invoice 5003")]  # fmt: skip
    with tenant_session(engine, T) as session:
        for invoice_id, name, client in invoices:
            session.add(Invoice(invoice_id=invoice_id, invoice_num=invoice_id, client_id=client,
                                client_name=name, issued_on=D(2026, 9, 20),
                                due_on=D(2026, 10, 4), total_minor=12345, balance_minor=12345,
                                currency="EUR", status="Unpaid"))  # fmt: skip
        for source_id, booked, payer, reference in payments:
            session.add(Transaction(source="bank", account_ref="acc", source_id=source_id,
                                    booked_on=booked, amount_minor=12345, currency="EUR",
                                    counterparty=payer, reference=reference))  # fmt: skip


def _run(engine: Engine, window: tuple[dt.date, dt.date], run_id: str) -> None:
    reconcile_window(engine, T, window, run_id=run_id)


def _tables(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every allocation row and every exception's state, as stored."""
    with tenant_session(engine, T) as session:
        allocations = [
            (a.id, a.transaction_ref, a.invoice_id, a.amount_minor, a.rule, a.decision, a.origin,
             a.reverses_id, a.created_by, a.note)
            for a in session.scalars(select(Allocation).order_by(Allocation.id))
        ]  # fmt: skip
        exceptions = [
            (e.id, e.kind, e.transaction_ref, e.status, e.resolution_kind, e.version, e.detail)
            for e in session.scalars(select(ReconException).order_by(ReconException.id))
        ]
    return allocations, exceptions


def _live(engine: Engine) -> set[tuple[str, str, str]]:
    with tenant_session(engine, T) as session:
        return {(a.transaction_ref, a.invoice_id, a.decision) for a in live_allocations(session)}


def _open(engine: Engine, kind: str) -> list[ReconException]:
    with tenant_session(engine, T) as session:
        return list(
            session.scalars(
                select(ReconException).where(
                    ReconException.status == "open", ReconException.kind == kind
                )
            )
        )


def test_the_engine_leaves_alone_what_people_decided(app: Engine) -> None:
    _run(app, WEEK1, "r1")
    assert (ref("p1"), "5001", "auto") in _live(app)
    (unmatched,) = _open(app, "unmatched_payment")
    assert unmatched.transaction_ref == ref("p2")
    # A person places p2 on 5003 (its exception resolved as matched) ...
    allocate(app, FIN, T, ref("p2"), [("5003", 12345)], "customer phoned")
    before = _tables(app)
    _run(app, WEEK1, "r2")
    assert _tables(app) == before  # nothing a person decided moved, nothing reopened
    # ... so the week-2 payment quoting 5003 finds nothing left open on it.
    _run(app, WEEK2, "r3")
    live = _live(app)
    assert (ref("p2"), "5003", "manual") in live
    assert not any(r == ref("p3") and i == "5003" for r, i, _ in live)
    after_week2 = _tables(app)
    _run(app, WEEK1, "r4")
    _run(app, WEEK2, "r5")
    assert _tables(app) == after_week2


def test_a_reversed_allocation_is_never_proposed_again(app: Engine) -> None:
    _run(app, WEEK1, "r1")
    with tenant_session(app, T) as session:
        engine_row = session.scalars(
            select(Allocation).where(Allocation.transaction_ref == ref("p1"))
        ).one()
    unallocate(app, FIN, T, engine_row.id, "not Jane's payment")
    _run(app, WEEK1, "r2")
    assert not any(r == ref("p1") for r, _, _ in _live(app))
    (raised,) = [e for e in _open(app, "unmatched_payment") if e.transaction_ref == ref("p1")]
    assert "a person reversed its allocation to invoice 5001" in raised.detail
    before = _tables(app)
    _run(app, WEEK1, "r3")
    assert _tables(app) == before
    # The person then places it by hand: the exception is resolved and stays resolved.
    allocate(app, FIN, T, ref("p1"), [("5003", 12345)])
    before = _tables(app)
    _run(app, WEEK1, "r4")
    assert _tables(app) == before
    assert [e.transaction_ref for e in _open(app, "unmatched_payment")] == [ref("p2")]
