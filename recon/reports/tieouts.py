"""The report's figures: the summary per source and currency and the tie-outs that must balance.

Each tie-out's parts are computed from the stored decisions, and what they leave unexplained is
reported as a difference, never folded into another figure.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from recon.db.models import (
    Allocation,
    BalanceSnapshot,
    Match,
    Payout,
    PayoutLine,
    ReconException,
    RecordedPayment,
    Transaction,
)
from recon.reports.model import (
    BalanceTieOut,
    BankTieOut,
    PayoutTieOut,
    RecordedTieOut,
    SummaryLine,
)
from recon.reports.queries import (
    ORIGINAL,
    Period,
    allocation_rows,
    category,
    in_period,
    not_customer_refs,
    payout_credit_refs,
    txn_ref,
)

YIELD = 5000
CUSTOMER_KINDS = ("payment", "charge")


def _sum(condition: Any, value: Any = Transaction.amount_minor) -> Any:
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def allocated_by(session: Session, period: Period) -> dict[tuple[str, str, str], int]:
    """(source, currency, category) -> live allocated minor units on the period's payments."""
    return allocation_totals(session, period)[0]


def allocation_totals(
    session: Session, period: Period
) -> tuple[dict[tuple[str, str, str], int], int]:
    """`allocated_by`, and how many allocation rows the period's payments have (one query: the
    outer join to a reversal's original adds no row)."""
    rows = session.execute(
        select(
            Transaction.source,
            Allocation.currency,
            category(),
            func.sum(Allocation.amount_minor),
            func.count(),
        )
        .join(Transaction, Allocation.transaction_ref == txn_ref())
        .outerjoin(ORIGINAL, Allocation.reverses_id == ORIGINAL.id)
        .where(in_period(period), allocation_rows(period))
        .group_by(Transaction.source, Allocation.currency, category())
    ).all()
    return {(s, c, k): int(total or 0) for s, c, k, total, _ in rows}, sum(n for *_, n in rows)


def summary(
    session: Session, period: Period, allocated: dict[tuple[str, str, str], int] | None = None
) -> tuple[SummaryLine, ...]:
    """Received, allocated (by the engine, by people), unallocated, refunded and fees
    (`allocated`: `allocated_by`, when the caller has it already)."""
    customer = and_(
        Transaction.amount_minor > 0,
        Transaction.kind.in_(CUSTOMER_KINDS),
        ~payout_credit_refs(),
        ~not_customer_refs(),  # a person said it is not a customer's money
    )
    rows = session.execute(
        select(
            Transaction.source,
            Transaction.currency,
            func.count(),
            _sum(customer),
            _sum(Transaction.kind == "refund", -Transaction.amount_minor),
            _sum(Transaction.kind == "dispute", -Transaction.amount_minor),
            _sum(Transaction.kind == "fee", -Transaction.amount_minor),
            func.coalesce(func.sum(Transaction.fee_minor), 0),
        )
        .where(in_period(period))
        .group_by(Transaction.source, Transaction.currency)
        .order_by(Transaction.source, Transaction.currency)
    ).all()
    if allocated is None:
        allocated = allocated_by(session, period)
    lines = []
    for source, currency, count, received, refunded, disputed, fee_lines, fees in rows:
        auto = allocated.get((source, currency, "auto"), 0)
        people = allocated.get((source, currency, "people"), 0)
        lines.append(
            SummaryLine(
                source=source,
                currency=currency,
                transactions=int(count),
                received=int(received),
                allocated_auto=auto,
                allocated_people=people,
                suggested=allocated.get((source, currency, "suggested"), 0),
                unallocated=int(received) - auto - people,
                refunded=int(refunded),
                disputed=int(disputed),
                fees=int(fee_lines) + int(fees),
            )
        )
    return tuple(lines)


def bank(session: Session, period: Period) -> tuple[BankTieOut, ...]:
    """Per bank account and currency: credits = allocated + payouts + unallocated + non-customer."""
    credits = (in_period(period), Transaction.source == "bank", Transaction.amount_minor > 0)
    held = (  # only the period's credits' allocations: not every allocation's sum, then a join
        select(Allocation.transaction_ref, func.sum(Allocation.amount_minor).label("amount"))
        .outerjoin(ORIGINAL, Allocation.reverses_id == ORIGINAL.id)
        .where(
            allocation_rows(period),
            category() != "suggested",
            Allocation.transaction_ref.in_(select(txn_ref()).where(*credits)),
        )
        .group_by(Allocation.transaction_ref)
        .subquery()
    )
    rows = session.execute(
        select(
            Transaction.account_ref,
            Transaction.currency,
            Transaction.amount_minor,
            func.coalesce(held.c.amount, 0),
            case((payout_credit_refs(), 1), else_=0),
            case((not_customer_refs(), 1), else_=0),
        )
        .outerjoin(held, held.c.transaction_ref == txn_ref())
        .where(*credits)
        .execution_options(yield_per=YIELD)
    )
    return bank_tieouts(rows)


def bank_tieouts(rows: Iterable[Any]) -> tuple[BankTieOut, ...]:
    """Fold (account, currency, credit, allocated, is payout credit, is not a customer's) rows
    into one tie-out per bank account and currency."""
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * 6)
    for account, currency, amount, allocated, payout, not_customer in rows:
        t = totals[(account, currency)]
        t[0] += 1
        t[1] += amount
        t[2] += int(allocated)
        rest = amount - int(allocated)
        if payout:
            t[3] += amount
            rest -= amount
        if rest > 0:  # what is over-allocated or double-counted shows as the difference
            t[5 if not_customer else 4] += rest
    return tuple(
        BankTieOut(account, currency, t[0], t[1], t[2], t[3], t[4], t[5])
        for (account, currency), t in sorted(totals.items())
    )


def payouts(session: Session, period: Period) -> tuple[PayoutTieOut, ...]:
    """Per payout arriving in the period: its lines, its amount, its bank credit."""
    found = list(
        session.scalars(
            select(Payout)
            .where(Payout.arrival_on >= period.date_from, Payout.arrival_on <= period.date_to)
            .order_by(Payout.arrival_on, Payout.source, Payout.payout_id)
        )
    )
    ids = [p.payout_id for p in found]
    line_source = case(
        (PayoutLine.source == "gocardless_payments", "gocardless"), else_=PayoutLine.source
    )
    lines: dict[tuple[str, str], tuple[int, int]] = {}
    for source, payout_id, count, total in session.execute(
        select(
            PayoutLine.source,
            PayoutLine.payout_id,
            func.count(PayoutLine.id),
            func.coalesce(func.sum(Transaction.amount_minor - Transaction.fee_minor), 0),
        )
        .outerjoin(
            Transaction,
            and_(
                Transaction.source == line_source,
                Transaction.source_id == PayoutLine.transaction_id,
            ),
        )
        .where(PayoutLine.payout_id.in_(ids))
        .group_by(PayoutLine.source, PayoutLine.payout_id)
    ):
        lines[(source, payout_id)] = (int(count), int(total))
    credit_of = {
        m.left_ref: m.right_ref
        for m in session.scalars(
            select(Match).where(
                Match.kind == "payout_bank", Match.reverses_id.is_(None), Match.left_ref.in_(ids)
            )
        )
    }
    amounts: dict[str, int] = {
        row[0]: row[1]
        for row in session.execute(
            select(txn_ref(), Transaction.amount_minor).where(
                txn_ref().in_(list(credit_of.values()))
            )
        )
    }
    out = []
    for p in found:
        count, total = lines.get((p.source, p.payout_id), (0, 0))
        ref = credit_of.get(p.payout_id)
        out.append(
            PayoutTieOut(
                p.source,
                p.payout_id,
                p.arrival_on,
                p.currency,
                p.status,
                p.amount_minor,
                count,
                total,
                ref,
                amounts.get(ref) if ref else None,
            )
        )
    return tuple(out)


def recorded(
    session: Session, period: Period, reversed_ids: set[int]
) -> tuple[RecordedTieOut, ...]:
    """WHMCS's recorded payments of the period: confirmed by money, unbacked, or not checked."""
    payments = list(
        session.scalars(
            select(RecordedPayment)
            .where(
                RecordedPayment.recorded_on >= period.date_from,
                RecordedPayment.recorded_on <= period.date_to,
            )
            .order_by(RecordedPayment.recorded_on, RecordedPayment.whmcs_txn_id)
        )
    )
    unbacked = set(
        session.scalars(
            select(ReconException.subject_ref).where(
                ReconException.kind == "unbacked_payment", ReconException.status != "closed"
            )
        )
    )
    confirmations: dict[str, list[int]] = defaultdict(list)
    for allocation in session.execute(
        select(Allocation.id, Allocation.invoice_id, Allocation.amount_minor).where(
            Allocation.rule.like("recorded\\_%", escape="\\"),
            Allocation.reverses_id.is_(None),
            allocation_rows(period),
        )
    ):
        if allocation.id not in reversed_ids:
            confirmations[allocation.invoice_id].append(allocation.amount_minor)
    totals: dict[str, list[int]] = defaultdict(lambda: [0] * 8)
    for p in payments:
        t = totals[p.currency]
        t[0] += 1
        t[1] += p.amount_minor
        pool = confirmations.get(p.invoice_id or "", [])
        hit = next((a for a in pool if a in (p.amount_minor, p.amount_minor - p.fees_minor)), None)
        if hit is not None:
            pool.remove(hit)
            t[2] += 1
            t[3] += p.amount_minor
        if p.whmcs_txn_id in unbacked:
            t[4] += 1
            t[5] += p.amount_minor
        elif hit is None:
            t[6] += 1
            t[7] += p.amount_minor
    return tuple(RecordedTieOut(c, *t) for c, t in sorted(totals.items()))


_PREFERRED = ("closingBooked", "interimBooked", "expected", "interimAvailable", "closingAvailable")
"""Balance types in the order a tie-out takes them: booked first, as movements are booked."""

Pair = tuple[BalanceSnapshot | None, BalanceSnapshot | None]


def _pair_of_type(snaps: list[BalanceSnapshot], period: Period) -> Pair:
    """(opening, closing) of one balance type: the closing is the period's last snapshot; the
    opening the last one before the period, else the period's first one before the closing."""
    inside = sorted(
        (s for s in snaps if period.date_from <= s.reference_date <= period.date_to),
        key=lambda s: s.reference_date,
    )
    before = [s for s in snaps if s.reference_date < period.date_from]
    opening = max(before, key=lambda s: s.reference_date) if before else None
    closing = inside[-1] if inside else None
    if opening is None and len(inside) > 1:
        opening = inside[0]
    return opening, closing


def _pair(snaps: list[BalanceSnapshot], period: Period) -> Pair:
    """The opening and closing of the first balance type (booked first) that has both; without
    such a type, the one snapshot there is (closing first), never two of different types."""
    rank = {name: i for i, name in enumerate(_PREFERRED)}
    types = sorted({s.balance_type for s in snaps}, key=lambda t: (rank.get(t, len(rank)), t))
    pairs = [_pair_of_type([s for s in snaps if s.balance_type == t], period) for t in types]
    whole = next(((o, c) for o, c in pairs if o is not None and c is not None), None)
    if whole is not None:
        return whole
    closing = next((c for _, c in pairs if c is not None), None)
    if closing is not None:
        return None, closing
    return next(((o, None) for o, _ in pairs if o is not None), (None, None))


def balances(session: Session, period: Period) -> tuple[BalanceTieOut, ...]:
    """Per bank account and currency, between two snapshots of one balance type at D1 < D2:
    snapshot(D1) + booked movements in (D1, D2] = snapshot(D2). With one snapshot (or none) the
    row shows what there is and no difference: no tie-out is made up."""
    accounts: set[tuple[str, str]] = {
        (account, currency)
        for account, currency in session.execute(
            select(Transaction.account_ref, Transaction.currency)
            .where(in_period(period), Transaction.source == "bank")
            .distinct()
        )
    }
    snaps: dict[tuple[str, str], list[BalanceSnapshot]] = defaultdict(list)
    for snap in session.scalars(
        select(BalanceSnapshot).where(BalanceSnapshot.reference_date <= period.date_to)
    ):
        snaps[(snap.account_ref, snap.currency)].append(snap)
        accounts.add((snap.account_ref, snap.currency))
    pairs = {key: _pair(snaps.get(key, []), period) for key in sorted(accounts)}
    windows: dict[tuple[dt.date, dt.date], set[tuple[str, str]]] = defaultdict(set)
    for key, (opening, closing) in pairs.items():
        since = opening.reference_date + dt.timedelta(days=1) if opening else period.date_from
        until = closing.reference_date if closing else period.date_to
        windows[(since, until)].add(key)
    movements: dict[tuple[str, str], int] = {}
    for (since, until), keys in windows.items():  # one query per window, not per account
        for account, currency, total in session.execute(
            select(
                Transaction.account_ref, Transaction.currency, func.sum(Transaction.amount_minor)
            )
            .where(
                Transaction.source == "bank",
                Transaction.status == "booked",
                Transaction.booked_on >= since,
                Transaction.booked_on <= until,
            )
            .group_by(Transaction.account_ref, Transaction.currency)
        ):
            if (account, currency) in keys:
                movements[(account, currency)] = int(total or 0)
    out = []
    for (account, currency), (opening, closing) in pairs.items():
        out.append(
            BalanceTieOut(
                account,
                currency,
                opening.reference_date if opening else None,
                opening.amount_minor if opening else None,
                movements.get((account, currency), 0),
                closing.reference_date if closing else None,
                closing.amount_minor if closing else None,
            )
        )
    return tuple(out)
