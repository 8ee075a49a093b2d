"""The Overview's figures read in two passes (revision 0013) equal the per-figure queries they
replaced, on SQLite and PostgreSQL, over books with the awkward cases: a reversed allocation and
its replacement, a suggestion only, a payment with several allocations, a second currency with
no automatic allocation, refunds and fees outside the period's customer payments, open
exceptions in every age bucket with and without a currency or an amount."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from recon.db.base import utcnow
from recon.db.models import Allocation, ReconException, Transaction
from recon.db.tenancy import tenant_session
from recon.review import overview
from tests.ui.seed import AUDITOR, DAY

END = DAY + dt.timedelta(days=30)


def _txn(n: int, amount: int, day: dt.date, **extra: object) -> Transaction:
    values: dict[str, object] = {
        "tenant_id": "acme", "source": "gocardless", "account_ref": "acct:2",
        "source_id": f"x{n}", "kind": "payment", "booked_on": day, "amount_minor": amount,
        "currency": "EUR",
    }  # fmt: skip
    values.update(extra)
    return Transaction(**values)


def _alloc(n: int, ref: str, amount: int, **extra: object) -> Allocation:
    values: dict[str, object] = {
        "tenant_id": "acme", "allocation_key": f"{900 + n:064d}", "transaction_ref": ref,
        "invoice_id": "101", "amount_minor": amount, "currency": "EUR", "rule": "exact_reference",
        "confidence": 90, "decision": "auto",
    }  # fmt: skip
    values.update(extra)
    return Allocation(**values)


def _more_books(engine: Engine) -> None:
    """Edge cases on top of the seeded books (tests/ui/seed.py)."""
    now = utcnow()
    late = DAY + dt.timedelta(days=3)
    with tenant_session(engine, "acme") as session:
        session.add_all(
            [
                _txn(1, 4_000, late),  # two live auto allocations
                _txn(2, 6_000, late),  # a suggestion only: matched, no money allocated
                _txn(3, 9_000, late, currency="GBP"),  # GBP, manual only
                _txn(4, 1_000, late, kind="charge", source="stripe"),  # auto, reversed
                _txn(5, -500, late, kind="refund"),  # not a customer payment
                _txn(6, 800, late, kind="fee"),  # not a customer payment
                _txn(7, 700, END + dt.timedelta(days=1)),  # after the period
            ]
        )
        session.add_all(
            [
                _alloc(1, "gocardless:acct:2:x1", 1_500),
                _alloc(2, "gocardless:acct:2:x1", 2_500),
                _alloc(3, "gocardless:acct:2:x2", 6_000, decision="review"),
                _alloc(
                    4,
                    "gocardless:acct:2:x3",
                    9_000,
                    currency="GBP",
                    decision="manual",
                    origin="manual",
                    rule="manual",
                ),
                _alloc(5, "gocardless:acct:2:x5", 500),
                _alloc(6, "gocardless:acct:2:x7", 700),
            ]
        )
        auto = _alloc(7, "stripe:acct:2:x4", 1_000)
        session.add(auto)
        session.flush()
        session.add(_alloc(8, "stripe:acct:2:x4", -1_000, reverses_id=auto.id, decision="manual",
                           origin="manual"))  # fmt: skip
        for n, (age, currency, amount) in enumerate(
            [
                (0, "EUR", 100),
                (7, "GBP", None),
                (8, None, None),
                (31, "EUR", 300),
                (90, "EUR", 5),
                (91, "GBP", 7),
                (400, None, 9),
            ]
        ):
            session.add(
                ReconException(
                    tenant_id="acme",
                    exception_key=f"{800 + n:064x}",
                    kind=("ambiguous", "overpayment")[n % 2],
                    amount_minor=amount,
                    currency=currency,
                    detail="edge",
                    created_at=now - dt.timedelta(days=age),
                )
            )
        session.add(
            ReconException(
                tenant_id="acme",
                exception_key=f"{899:064x}",
                kind="ambiguous",
                status="resolved",
                amount_minor=1,
                currency="EUR",
                detail="done",
                created_at=now,
            )
        )


# -- the definitions before revision 0013, one query per figure --------------------------------


def _old_per_ref(*criteria: ColumnElement[bool]) -> Any:
    return (
        select(
            Allocation.transaction_ref.label("ref"),
            func.sum(Allocation.amount_minor).label("minor"),
        )
        .where(overview.live_allocation(), *criteria)
        .group_by(Allocation.transaction_ref)
        .subquery()
    )


def _old_allocated(session: Session, *criteria: ColumnElement[bool]) -> list[tuple[str, int]]:
    per_ref = _old_per_ref(*criteria)
    rows = session.execute(
        select(Transaction.currency, func.sum(per_ref.c.minor))
        .join(per_ref, per_ref.c.ref == overview.transaction_ref_of())
        .where(*overview._period_payments(DAY, END))
        .group_by(Transaction.currency)
        .order_by(Transaction.currency)
    ).all()
    return [(c, int(m or 0)) for c, m in rows if c is not None]


def _old(engine: Engine, now: dt.datetime) -> dict[str, Any]:
    with tenant_session(engine, "acme") as session:
        period = overview._period_payments(DAY, END)
        by_source = session.execute(
            select(Transaction.source, Transaction.currency, func.sum(Transaction.amount_minor))
            .where(*period)
            .group_by(Transaction.source, Transaction.currency)
            .order_by(Transaction.source, Transaction.currency)
        ).all()
        per_ref = _old_per_ref()
        matched = case((per_ref.c.ref.is_not(None), 1), else_=0)
        days = session.execute(
            select(Transaction.booked_on, func.count(), func.sum(matched))
            .outerjoin(per_ref, per_ref.c.ref == overview.transaction_ref_of())
            .where(*period)
            .group_by(Transaction.booked_on)
            .order_by(Transaction.booked_on)
        ).all()
        is_open = ReconException.status == "open"
        count, oldest = session.execute(
            select(func.count(), func.min(ReconException.created_at)).where(is_open)
        ).one()
        sums = session.execute(
            select(ReconException.currency, func.sum(ReconException.amount_minor))
            .where(is_open, ReconException.currency.is_not(None))
            .group_by(ReconException.currency)
            .order_by(ReconException.currency)
        ).all()
        whens = [
            (ReconException.created_at >= now - dt.timedelta(days=d), label)
            for label, d in overview.AGE_BUCKETS
        ]
        bucket = case(*whens, else_=overview.OLDEST_BUCKET).label("age")
        ages = session.execute(
            select(bucket, ReconException.kind, func.count())
            .where(is_open)
            .group_by(bucket, ReconException.kind)
            .order_by(bucket, ReconException.kind)
        ).all()
        return {
            "by_source": [(s, c, int(m)) for s, c, m in by_source],
            "auto": _old_allocated(session, Allocation.decision == "auto"),
            "manual": _old_allocated(session, Allocation.origin == "manual"),
            "days": [(d, int(n), int(m or 0)) for d, n, m in days],
            "open": (int(count), [(c, int(m or 0)) for c, m in sums]),
            "oldest": (now - overview._aware(oldest)).days if oldest is not None else None,
            "ages": [(a, k, int(n)) for a, k, n in ages],
        }


def test_the_overview_equals_the_per_figure_queries_it_replaced(seeded: Engine) -> None:
    _more_books(seeded)
    view = overview.overview(seeded, AUDITOR, "acme", DAY, END)
    old = _old(seeded, utcnow())
    assert [(s.source, s.currency, s.minor) for s in view.received_by_source] == old["by_source"]
    assert [(a.currency, a.minor) for a in view.allocated_auto] == old["auto"]
    assert [(a.currency, a.minor) for a in view.allocated_manual] == old["manual"]
    assert [(d.day, d.payments, d.matched) for d in view.match_rate_by_day] == old["days"]
    assert (view.open_count, [(a.currency, a.minor) for a in view.open_sum]) == old["open"]
    assert view.oldest_open_days == old["oldest"]
    assert [(a.age, a.kind, a.count) for a in view.open_by_age_kind] == old["ages"]
    # and the figures are the ones these books hold
    assert old["auto"] == [("EUR", 15_000 + 4_000)]  # x1's two; x4's reversed, x7 after the end
    assert old["manual"] == [("EUR", 3_000), ("GBP", 9_000)]
    assert (view.payments, view.matched_payments) == (4 + 4, 3 + 3)  # x1, x2 (suggestion), x3
    assert view.open_count == 2 + 7
    assert {a.age for a in view.open_by_age_kind} == {"0-7 d", "8-30 d", "31-90 d", "> 90 d"}
