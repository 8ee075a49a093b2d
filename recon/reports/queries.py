"""SQL pieces the report's queries share: the period, transaction refs, allocation categories.

Allocations and the audit log are append-only, so the report bounds allocations by the highest id
it saw when it was built (`Period.max_allocation_id`): streaming the detail later, in another
transaction, yields exactly the rows the figures were computed from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, case, func, literal_column, or_, select, text
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import SQLCoreOperations

from recon.db.engine import without_jit
from recon.db.models import Allocation, Match, ReconException, Transaction

ENGINE = "engine"


@dataclass(frozen=True)
class Period:
    """The report's days, and the allocation rows it covers."""

    date_from: dt.date
    date_to: dt.date
    max_allocation_id: int

    @property
    def start(self) -> dt.datetime:
        """First instant of the period (for timestamps)."""
        return dt.datetime.combine(self.date_from, dt.time())

    @property
    def end(self) -> dt.datetime:
        """First instant after the period."""
        return dt.datetime.combine(self.date_to + dt.timedelta(days=1), dt.time())


def read_only(session: Session) -> None:
    """Make the report's transaction read-only where the database can (PostgreSQL), without JIT
    compilation (`without_jit`)."""
    if session.get_bind().dialect.name == "postgresql":
        # switching *to* read-only is allowed after the transaction's first query
        session.execute(text("SET TRANSACTION READ ONLY"))
    without_jit(session)


def txn_ref() -> SQLCoreOperations[str]:
    """SQL of a transaction's `transaction_ref` (`source:account_ref:source_id`)."""
    return Transaction.source + ":" + Transaction.account_ref + ":" + Transaction.source_id


def in_period(period: Period) -> ColumnElement[bool]:
    """A booked transaction of the period."""
    return and_(
        Transaction.booked_on >= period.date_from,
        Transaction.booked_on <= period.date_to,
        Transaction.status == "booked",
    )


def payout_credit_refs() -> ColumnElement[bool]:
    """A transaction the engine matched to a provider payout (a payout arriving in the bank)."""
    matched = select(Match.right_ref).where(
        Match.kind == "payout_bank", Match.reverses_id.is_(None)
    )
    return txn_ref().in_(matched)


def not_customer_refs() -> ColumnElement[bool]:
    """A transaction a person resolved as not a customer payment."""
    resolved = select(ReconException.transaction_ref).where(
        ReconException.resolution_kind == "not_customer",
        ReconException.transaction_ref.is_not(None),
    )
    return txn_ref().in_(resolved)


ORIGINAL = aliased(Allocation, name="original")


def category() -> ColumnElement[str]:
    """auto, people or suggested; a reversal counts in its original's category, so summing
    originals and reversals together gives the live amounts (needs the ORIGINAL outer join)."""
    # literals, not bound parameters: PostgreSQL must see the GROUP BY expression as the SELECT's
    engine: ColumnElement[str] = literal_column(f"'{ENGINE}'")
    manual: ColumnElement[str] = literal_column("'manual'")
    review: ColumnElement[str] = literal_column("'review'")
    origin = func.coalesce(ORIGINAL.origin, Allocation.origin)
    decision = func.coalesce(ORIGINAL.decision, Allocation.decision)
    by = func.coalesce(ORIGINAL.created_by, Allocation.created_by)
    return case(
        (or_(origin != engine, by != engine, decision == manual), literal_column("'people'")),
        (decision == review, literal_column("'suggested'")),
        else_=literal_column("'auto'"),
    )


def allocation_rows(period: Period) -> ColumnElement[bool]:
    """Allocation rows the report covers."""
    return Allocation.id <= period.max_allocation_id


def reversals(session: Session, period: Period) -> dict[int, int]:
    """original id -> id of the row that reversed it (few next to the allocations)."""
    rows = session.execute(
        select(Allocation.reverses_id, Allocation.id).where(
            Allocation.reverses_id.is_not(None), allocation_rows(period)
        )
    )
    return {int(original): int(reversal) for original, reversal in rows if original is not None}
