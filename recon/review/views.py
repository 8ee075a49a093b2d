"""The typed results of the work queue and of one exception: what the CLI prints and the UI shows.

Amounts travel as integer minor units next to their currency, and as the decimal string a person
reads (`amount`), computed once here with `recon.money`. `to_jsonable` turns any of these into
plain JSON values for `--json` output.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from recon.errors import RuleViolationError
from recon.money import MoneyError, format_amount


class ExceptionStatus(StrEnum):
    """Where an exception stands: open (work to do), resolved by a person, closed by the engine."""

    OPEN = "open"
    RESOLVED = "resolved"
    CLOSED = "closed"


class ResolutionKind(StrEnum):
    """How a person resolved an exception."""

    MATCHED = "matched"
    NOT_CUSTOMER = "not_customer"
    REFUNDED = "refunded"
    DUPLICATE = "duplicate"
    WRITTEN_OFF = "written_off"
    OTHER = "other"


class QueueSort(StrEnum):
    """Queue orders: oldest first, largest amount first, or by kind."""

    AGE = "age"
    AMOUNT = "amount"
    KIND = "kind"


AGE_BUCKETS: tuple[str, ...] = ("0-7", "8-30", "31-90", ">90")
UNASSIGNED = "none"
"""The assignee filter value that selects exceptions nobody holds."""


def decimal_text(minor: int | None, currency: str | None) -> str | None:
    """Minor units as a decimal string in the currency's major units ("12.50"), if known."""
    if minor is None:
        return None
    if not currency:
        return str(minor)
    try:
        return format_amount(minor, currency)
    except MoneyError:
        return str(minor)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """Aware UTC (SQLite hands back naive datetimes that are UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows; every field left as None does not narrow it.

    `assignee` is an email, or `UNASSIGNED` ("none") for exceptions nobody holds; `source` is the
    payment's provider (bank, stripe, gocardless); amounts are minor units; `search` looks in the
    payer's name and the payment's reference, without case.
    """

    kind: str | None = None
    status: str | None = ExceptionStatus.OPEN.value
    assignee: str | None = None
    source: str | None = None
    currency: str | None = None
    min_minor: int | None = None
    max_minor: int | None = None
    older_than_days: int | None = None
    search: str | None = None


@dataclass(frozen=True)
class QueueCursor:
    """Where the next page starts: the last row's sort key and id (keyset, never an offset)."""

    sort: QueueSort
    key: str
    last_id: int

    def encode(self) -> str:
        """An opaque token for `--after` and URLs."""
        raw = f"{self.sort.value}|{self.last_id}|{self.key}".encode()
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str) -> QueueCursor:
        """The cursor an `encode` token stands for; RuleViolationError if it is not one."""
        try:
            padded = token + "=" * (-len(token) % 4)
            sort, last_id, key = base64.urlsafe_b64decode(padded).decode().split("|", 2)
            return cls(QueueSort(sort), key, int(last_id))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise RuleViolationError(
                f"{token!r} is not a queue cursor; pass the `next` value a listing printed"
            ) from None


@dataclass(frozen=True)
class ExceptionView:
    """One exception as the queue and its detail show it."""

    id: int
    kind: str
    status: str
    amount_minor: int | None
    currency: str | None
    amount: str | None
    assignee: str | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    age_days: int
    transaction_ref: str | None
    invoice_id: str | None
    subject_ref: str | None
    detail: str
    source: str | None
    payer: str | None
    reference: str | None
    resolution_kind: str | None
    resolution_note: str | None
    resolved_by: str | None
    resolved_at: dt.datetime | None
    closed_reason: str | None
    updated_by: str | None


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue and the cursor of the next (None on the last page)."""

    items: tuple[ExceptionView, ...]
    next: QueueCursor | None
    sort: QueueSort


@dataclass(frozen=True)
class OverviewRow:
    """How many exceptions and how much money share a status, kind, age bucket and currency."""

    status: str
    kind: str
    age_bucket: str
    currency: str | None
    count: int
    amount_minor: int
    amount: str | None


@dataclass(frozen=True)
class OverviewTotal:
    """A count and the sums per currency for one value of one dimension (a kind, a status...)."""

    key: str
    count: int
    sums: tuple[tuple[str, str], ...]
    """(currency, decimal amount) pairs, sorted by currency."""


@dataclass(frozen=True)
class QueueOverview:
    """Counts and sums of the tenant's exceptions, aggregated in the database."""

    as_of: dt.datetime
    rows: tuple[OverviewRow, ...]

    def totals(self, dimension: str, *, status: str | None = None) -> tuple[OverviewTotal, ...]:
        """Totals by `dimension` ("status", "kind" or "age_bucket"), optionally of one status."""
        counts: dict[str, int] = {}
        sums: dict[str, dict[str, int]] = {}
        for row in self.rows:
            if status is not None and row.status != status:
                continue
            key = str(getattr(row, dimension))
            counts[key] = counts.get(key, 0) + row.count
            per = sums.setdefault(key, {})
            ccy = row.currency or ""
            per[ccy] = per.get(ccy, 0) + row.amount_minor
        order = list(AGE_BUCKETS) if dimension == "age_bucket" else sorted(counts)
        return tuple(
            OverviewTotal(
                key,
                counts[key],
                tuple((c, decimal_text(m, c) or "0") for c, m in sorted(sums[key].items())),
            )
            for key in order
            if key in counts
        )


@dataclass(frozen=True)
class PaymentView:
    """The payment an exception is about, with the provider's record as it was landed."""

    transaction_ref: str
    source: str
    account_ref: str
    source_id: str
    kind: str
    status: str
    booked_on: dt.date
    amount_minor: int
    fee_minor: int
    currency: str
    amount: str | None
    counterparty: str | None
    reference: str | None
    payout_id: str | None
    charge_id: str | None
    raw_payload_id: int | None
    raw_record: Mapping[str, Any] | None
    """The record inside the landed page (parsed JSON, secrets masked); None if not found."""


@dataclass(frozen=True)
class CandidateView:
    """A live allocation of the payment: the engine's (auto, or review = a suggestion) or a
    person's."""

    allocation_id: int
    invoice_id: str
    amount_minor: int
    currency: str
    amount: str | None
    rule: str
    confidence: int
    decision: str
    origin: str
    created_by: str
    created_at: dt.datetime | None


@dataclass(frozen=True)
class RunnerUpView:
    """Another invoice the engine considered for the payment (an `ambiguous` exception row)."""

    exception_id: int
    invoice_id: str | None
    confidence: int | None
    rule: str | None
    detail: str


@dataclass(frozen=True)
class InvoiceView:
    """An open invoice of the payer."""

    invoice_id: str
    invoice_num: str | None
    client_id: str
    client_name: str | None
    company_name: str | None
    issued_on: dt.date
    due_on: dt.date | None
    total: str | None
    balance_minor: int
    balance: str | None
    currency: str
    status: str


@dataclass(frozen=True)
class CommentView:
    """A note a person left."""

    id: int
    author: str
    body: str
    created_at: dt.datetime | None


@dataclass(frozen=True)
class HistoryEntry:
    """An audit-log entry about the exception or its payment's allocations."""

    seq: int
    occurred_at: dt.datetime | None
    actor: str
    action: str
    entity: str
    entity_id: str
    details: Mapping[str, Any]


@dataclass(frozen=True)
class ExceptionDetail:
    """Everything a person needs to decide one exception."""

    exception: ExceptionView
    payment: PaymentView | None
    candidates: tuple[CandidateView, ...]
    runners_up: tuple[RunnerUpView, ...]
    open_invoices: tuple[InvoiceView, ...]
    payer_match: str
    """How the open invoices were found: "client" (of the candidate invoices), "name" (the
    payer's name) or "none"."""
    comments: tuple[CommentView, ...]
    history: tuple[HistoryEntry, ...]


def to_jsonable(value: Any) -> Any:
    """Plain JSON values of a result dataclass (dates as ISO strings, enums as their value)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, QueuePage):
            out["next"] = value.next.encode() if value.next else None
        return out
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value
