"""The explorers' allocations and their live flags, read per page (the page's allocations, then
the reversals naming them), agree with the old definition (`live_allocation`, a correlated NOT
EXISTS per row) on SQLite and PostgreSQL, even for a reversal filed under another invoice or
payment than the row it reverses."""

from __future__ import annotations

from sqlalchemy import Engine, select

from recon.db.models import Allocation
from recon.db.tenancy import tenant_session
from recon.review import explore
from recon.review.overview import live_allocation
from tests.ui.seed import FINANCE

TENANT = "acme"


def _add_odd_reversals(engine: Engine) -> None:
    """Invoice 101's allocation reversed by a row filed under invoice 102 and payment t2, and a
    second allocation on 102 reversed in the usual way."""
    with tenant_session(engine, TENANT) as session:
        original = session.scalars(
            select(Allocation).where(Allocation.invoice_id == "101", Allocation.amount_minor > 0)
        ).one()

        def row(n: int, tx: int, invoice: str, amount: int, reverses: int | None) -> Allocation:
            return Allocation(
                tenant_id=TENANT, allocation_key=f"{n:064d}", transaction_ref=f"bank:acct:t{tx}",
                invoice_id=invoice, amount_minor=amount, currency="EUR", rule="manual",
                confidence=100, decision="manual", origin="manual", created_by=FINANCE,
                reverses_id=reverses,
            )  # fmt: skip

        session.add(row(90, 2, "102", -original.amount_minor, original.id))
        extra = row(91, 2, "102", 1_000, None)
        session.add(extra)
        session.flush()
        session.add(row(92, 2, "102", -1_000, extra.id))


def _old_live(engine: Engine) -> dict[int, bool]:
    with tenant_session(engine, TENANT) as session:
        rows = session.execute(select(Allocation.id, live_allocation().label("live"))).all()
    return {i: bool(live) for i, live in rows}


def test_invoice_rows_carry_the_same_live_allocations_as_the_old_query(seeded: Engine) -> None:
    _add_odd_reversals(seeded)
    old = _old_live(seeded)
    assert old and not all(old.values())
    page = explore.invoices_page(seeded, FINANCE, TENANT, limit=50)
    views = [a for r in page.rows for a in r.allocations]
    with tenant_session(seeded, TENANT) as session:
        by_invoice = session.scalars(select(Allocation.id).where(Allocation.invoice_id.in_(
            [r.invoice_id for r in page.rows]))).all()  # fmt: skip
    assert sorted(a.id for a in views) == sorted(by_invoice)
    assert {a.id: a.live for a in views} == {i: old[i] for i in by_invoice}
    for r in page.rows:
        assert r.allocated_minor == sum(a.amount_minor for a in r.allocations if old[a.id])
    first = next(r for r in page.rows if r.invoice_id == "101")
    assert first.allocated_minor == 0  # reversed by a row filed under invoice 102
    assert [a.live for a in first.allocations] == [False]


def test_transaction_rows_carry_the_same_live_allocations_as_the_old_query(
    seeded: Engine,
) -> None:
    _add_odd_reversals(seeded)
    old = _old_live(seeded)
    rows = explore.transactions_page(seeded, FINANCE, TENANT, limit=50).rows
    views = [a for r in rows for a in r.allocations]
    assert len(views) == len(old)  # every allocation names one of the four payments
    assert {a.id: a.live for a in views} == old
    for r in rows:
        assert r.allocated_minor == sum(a.amount_minor for a in r.allocations if old[a.id])
    alice = next(r for r in rows if r.counterparty == "Alice Ltd")
    assert alice.allocated_minor == 0
