"""The auditor's reconciliation report as typed values, and its sections as canonical rows.

`build_report` (recon.reports.build) fills a `Report`: money is integer minor units next to an ISO
4217 currency everywhere in it. `sections(report)` turns it into the format-independent form every
writer renders and the digest covers: an ordered list of `Section`s whose rows are tuples of JSON
scalars (text, integers, ISO dates; amounts as integer minor units). Detail sections may be large
(a million allocations), so a section's rows are produced on demand, as a stream.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from recon.spreadsheet_safe import safe_cell

FORMAT = "recon-report/1"
"""The canonical form's name and version; every manifest names it."""

Cell = str | int | None
"""A canonical cell: text (formula-safe), an integer (minor units for amounts), or None."""
Row = tuple[Cell, ...]


class Kind(StrEnum):
    """How a column's canonical value is read and rendered."""

    TEXT = "text"
    INT = "int"
    AMOUNT = "amount"  # integer minor units; the row's currency column names the currency
    DATE = "date"  # ISO YYYY-MM-DD
    DATETIME = "datetime"  # ISO 8601 UTC, seconds, ending in Z


@dataclass(frozen=True)
class Column:
    """One column of a section; an amount names the column holding its currency."""

    name: str
    kind: Kind = Kind.TEXT
    currency: str | None = None

    def to_json(self) -> list[str]:
        """The column as the canonical form and manifests list it."""
        return [self.name, self.kind.value, self.currency or ""]

    @classmethod
    def from_json(cls, value: object) -> Column:
        """Parse a column from its `to_json` form; ValueError when malformed."""
        if not (
            isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value)
        ):
            raise ValueError("a column is a list of three strings")
        return cls(value[0], Kind(value[1]), value[2] or None)


@dataclass(frozen=True)
class Section:
    """A named table of canonical rows; `rows()` streams them (call again to stream again)."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: Callable[[], Iterator[Row]]
    count: int
    """How many rows `rows()` yields."""

    def currency_index(self, column: Column) -> int | None:
        """Position of an amount column's currency column."""
        names = [c.name for c in self.columns]
        return names.index(column.currency) if column.currency in names else None


def fixed(name: str, title: str, columns: tuple[Column, ...], rows: Iterable[Row]) -> Section:
    """A section whose rows are already in memory."""
    kept = tuple(rows)
    return Section(name, title, columns, lambda: iter(kept), len(kept))


# -- canonical cell values -------------------------------------------------------------------------


def text(value: object) -> str:
    """A text cell: '' for None, formula-safe (a leading = + - @ tab or CR gets a quote)."""
    return "" if value is None else safe_cell(str(value))


def day(value: dt.date | None) -> str | None:
    """A date cell: ISO YYYY-MM-DD."""
    return None if value is None else value.isoformat()


def stamp(value: dt.datetime | None) -> str | None:
    """A datetime cell: UTC to the second, `2026-10-01T12:00:00Z` (naive values are UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the typed report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """Who made the report, when, of what, with which software and schema."""

    tenant_id: str
    tenant_name: str
    date_from: dt.date
    date_to: dt.date
    generated_at: dt.datetime
    generated_by: str
    software_version: str
    schema_revision: str


@dataclass(frozen=True)
class SummaryLine:
    """Money of one source in one currency over the period (minor units)."""

    source: str
    currency: str
    transactions: int
    received: int
    allocated_auto: int
    allocated_people: int
    suggested: int
    unallocated: int
    refunded: int
    disputed: int
    fees: int


@dataclass(frozen=True)
class BankTieOut:
    """credits = allocated + payouts + unallocated + non-customer, per bank account and currency."""

    account_ref: str
    currency: str
    credit_lines: int
    credits: int
    allocated: int
    payouts: int
    unallocated: int
    non_customer: int

    @property
    def difference(self) -> int:
        """What the four parts leave unexplained (non-zero: over-allocated or double-counted)."""
        return self.credits - (self.allocated + self.payouts + self.unallocated + self.non_customer)


@dataclass(frozen=True)
class PayoutTieOut:
    """A payout's lines = its amount = the bank credit it arrived as."""

    source: str
    payout_id: str
    arrival_on: dt.date
    currency: str
    status: str
    amount: int
    lines: int
    lines_total: int
    bank_ref: str | None
    bank_credit: int | None

    @property
    def lines_difference(self) -> int:
        """Lines total minus the payout's amount."""
        return self.lines_total - self.amount

    @property
    def bank_difference(self) -> int | None:
        """Bank credit minus the payout's amount; None when no bank credit is matched."""
        return None if self.bank_credit is None else self.bank_credit - self.amount


@dataclass(frozen=True)
class RecordedTieOut:
    """WHMCS's recorded payments of the period in one currency: backed by money or not."""

    currency: str
    recorded_count: int
    recorded: int
    backed_count: int
    backed: int
    unbacked_count: int
    unbacked: int
    unchecked_count: int
    unchecked: int

    @property
    def difference(self) -> int:
        """recorded - (backed + unbacked + unchecked); non-zero when a payment is both."""
        return self.recorded - (self.backed + self.unbacked + self.unchecked)


NO_BALANCE = "no balance reported by the bank for this period"
ONE_BALANCE = "one balance reported by the bank so far: no tie-out possible yet"


@dataclass(frozen=True)
class BalanceTieOut:
    """opening + movements = closing for one bank account, where the bank gave balances."""

    account_ref: str
    currency: str
    opening_on: dt.date | None
    opening: int | None
    movements: int
    closing_on: dt.date | None
    closing: int | None

    @property
    def difference(self) -> int | None:
        """closing - (opening + movements); None without both balances."""
        if self.opening is None or self.closing is None:
            return None
        return self.closing - (self.opening + self.movements)


@dataclass(frozen=True)
class AllocationLine:
    """One allocation row as written (reversals included), with the payment it belongs to."""

    id: int
    created_at: dt.datetime
    booked_on: dt.date
    source: str
    transaction_ref: str
    payer: str | None
    reference: str | None
    invoice_id: str
    amount: int
    currency: str
    rule: str
    confidence: int
    decision: str
    origin: str
    created_by: str
    reverses_id: int | None
    reversed_by: int | None
    note: str | None

    @property
    def state(self) -> str:
        """live, reversed (a later row undid it) or reversal (it undoes another row)."""
        if self.reverses_id is not None:
            return "reversal"
        return "reversed" if self.reversed_by is not None else "live"


@dataclass(frozen=True)
class OpenException:
    """An exception still open, with its age in days when the report was generated."""

    id: int
    kind: str
    created_at: dt.datetime
    age_days: int
    transaction_ref: str | None
    payer: str | None
    invoice_id: str | None
    subject_ref: str | None
    amount: int | None
    currency: str | None
    assignee: str | None
    detail: str


@dataclass(frozen=True)
class ManualDecision:
    """A decision a person made, or a reversal (by a person or the engine), with who and when."""

    at: dt.datetime
    who: str
    what: str
    ref_id: int
    transaction_ref: str | None
    invoice_id: str | None
    amount: int | None
    currency: str | None
    detail: str
    note: str | None


@dataclass(frozen=True)
class QuarantinedLine:
    """A provider record that could not be loaded, with its reasons."""

    id: int
    provider: str
    dataset: str
    account_ref: str | None
    row_key: str
    booked_on: dt.date | None
    amount: int | None
    currency: str | None
    reasons: str
    created_at: dt.datetime


@dataclass(frozen=True)
class FailedValidation:
    """A validation suite that failed on a batch of a run over the period."""

    run_id: str
    dataset: str
    suite: str
    rows_evaluated: int
    rows_failed: int
    held: bool
    created_at: dt.datetime


@dataclass(frozen=True)
class AuditVerdict:
    """The audit chain's head and whether the whole chain verified."""

    entries: int
    head_seq: int
    head_hash: str
    key_id: str
    verdict: str

    @property
    def ok(self) -> bool:
        """True when the chain verified."""
        return self.verdict == "verified"


@dataclass(frozen=True)
class Report:
    """Everything the report says; `allocations()` streams the allocation rows."""

    header: Header
    summary: tuple[SummaryLine, ...]
    bank: tuple[BankTieOut, ...]
    payouts: tuple[PayoutTieOut, ...]
    recorded: tuple[RecordedTieOut, ...]
    balances: tuple[BalanceTieOut, ...]
    allocations: Callable[[], Iterator[AllocationLine]]
    allocation_count: int
    open_exceptions: tuple[OpenException, ...]
    decisions: tuple[ManualDecision, ...]
    quarantined: tuple[QuarantinedLine, ...]
    failed_validations: tuple[FailedValidation, ...]
    audit: AuditVerdict

    def differences(self) -> dict[str, int]:
        """How many rows of each tie-out do not balance (a payout without a bank credit counts)."""
        return {
            "bank": sum(1 for b in self.bank if b.difference),
            "payouts": sum(
                1 for p in self.payouts if p.lines_difference or p.bank_difference is None
                or p.bank_difference
            ),
            "recorded": sum(1 for r in self.recorded if r.difference or r.unbacked_count),
            "balances": sum(1 for b in self.balances if b.difference),
        }  # fmt: skip
