"""The report's rewritten queries give what their old definitions gave, on SQLite and PostgreSQL:
the bank tie-out sums only the period's credits' allocations (not every allocation's, then a
join), over the known books plus allocations of payments outside the period and a reversal."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, case, func, select

from recon.db.models import Allocation, Transaction
from recon.db.tenancy import tenant_session
from recon.reports import tieouts
from recon.reports.model import BankTieOut
from recon.reports.queries import (
    ORIGINAL,
    Period,
    allocation_rows,
    category,
    in_period,
    not_customer_refs,
    payout_credit_refs,
    read_only,
    txn_ref,
)
from tests.integration.test_export_books import FROM, TENANT, TO, _alloc, _txn, bank_ref, books

__all__ = ["books"]


def _old_bank(session: object, period: Period) -> tuple[BankTieOut, ...]:
    """tieouts.bank as it was: every allocation summed per payment, then joined."""
    held = (
        select(Allocation.transaction_ref, func.sum(Allocation.amount_minor).label("amount"))
        .outerjoin(ORIGINAL, Allocation.reverses_id == ORIGINAL.id)
        .where(allocation_rows(period), category() != "suggested")
        .group_by(Allocation.transaction_ref)
        .subquery()
    )
    rows = session.execute(  # type: ignore[attr-defined]
        select(
            Transaction.account_ref,
            Transaction.currency,
            Transaction.amount_minor,
            func.coalesce(held.c.amount, 0),
            case((payout_credit_refs(), 1), else_=0),
            case((not_customer_refs(), 1), else_=0),
        )
        .outerjoin(held, held.c.transaction_ref == txn_ref())
        .where(in_period(period), Transaction.source == "bank", Transaction.amount_minor > 0)
    )
    return tieouts.bank_tieouts(rows)


def _more_books(engine: Engine) -> None:
    """A bank credit of September with an allocation, and one of October allocated twice by the
    engine, a review suggestion and a reversal of one of them."""
    with tenant_session(engine, TENANT) as session:
        session.add_all([
            _txn("bank", "bank-1", "sep-1", 1, 4_000, booked_on=dt.date(2026, 9, 30)),
            _txn("bank", "bank-1", "oct-x", 20, 9_000),
            _txn("bank", "bank-2", "oct-y", 21, 1_500, currency="GBP"),
        ])  # fmt: skip
        session.add_all([
            _alloc("q1", bank_ref("sep-1"), "500", 4_000),
            _alloc("q2", bank_ref("oct-x"), "501", 5_000),
            _alloc("q3", bank_ref("oct-x"), "502", 3_000),
            _alloc("q4", bank_ref("oct-x"), "503", 1_000, decision="review"),
        ])  # fmt: skip
        session.flush()
        original = session.scalars(
            select(Allocation).where(Allocation.invoice_id == "503")
        ).one()  # fmt: skip
        session.add(_alloc("q5", bank_ref("oct-x"), "502", -3_000,
                           reverses_id=original.id - 1))  # fmt: skip


def test_the_bank_tie_out_is_what_the_old_query_gave(books: Engine) -> None:
    _more_books(books)
    with tenant_session(books, TENANT) as session:
        read_only(session)
        top = session.scalar(select(func.max(Allocation.id))) or 0
        for date_from, date_to, max_id in (
            (FROM, TO, top),
            (FROM, TO, top - 1),  # before the reversal
            (dt.date(2026, 9, 1), TO, top),
            (dt.date(2026, 9, 1), dt.date(2026, 9, 30), top),
        ):
            period = Period(date_from, date_to, int(max_id))
            new = tieouts.bank(session, period)
            assert new == _old_bank(session, period)
            assert new  # the comparison covers real rows


def test_the_allocation_count_comes_with_the_allocated_sums(books: Engine) -> None:
    _more_books(books)
    with tenant_session(books, TENANT) as session:
        top = int(session.scalar(select(func.max(Allocation.id))) or 0)
        counts: list[int] = []
        for date_from in (FROM, dt.date(2026, 9, 1), dt.date(2026, 10, 21)):
            period = Period(date_from, TO, top)
            allocated, count = tieouts.allocation_totals(session, period)
            old_count = session.scalar(
                select(func.count())
                .select_from(Allocation)
                .join(Transaction, Allocation.transaction_ref == txn_ref())
                .where(in_period(period), allocation_rows(period))
            )
            assert count == old_count
            counts.append(count)
            assert allocated == tieouts.allocated_by(session, period)
    assert counts[1] == counts[0] + 1 > 1 and counts[2] == 0  # September's one allocation
