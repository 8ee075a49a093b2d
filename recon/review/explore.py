"""Read-only explorers for the ops UI: transactions and invoices with their allocations, and the
audit log with its chain verdict. Keyset-paginated (by id, newest first), filtered in SQL, each
call checks READ on the tenant inside its own transaction."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Engine, func, or_, select
from sqlalchemy.orm import Session

from recon import audit
from recon.db.models import Allocation, AuditEntry, Invoice, Transaction
from recon.db.tenancy import tenant_session
from recon.review.access import Actor, Permission, require
from recon.review.overview import transaction_ref_of

MAX_LIMIT = 500
T = TypeVar("T")


@dataclass(frozen=True)
class AllocationView:
    """One allocation touching a transaction or an invoice."""

    id: int
    transaction_ref: str
    invoice_id: str
    amount_minor: int
    currency: str
    rule: str
    confidence: int
    decision: str
    origin: str
    created_by: str
    created_at: dt.datetime
    live: bool


@dataclass(frozen=True)
class TransactionRow:
    """A money movement with the allocations that name it."""

    id: int
    ref: str
    source: str
    kind: str
    booked_on: dt.date
    amount_minor: int
    currency: str
    counterparty: str | None
    reference: str | None
    allocated_minor: int
    allocations: tuple[AllocationView, ...]


@dataclass(frozen=True)
class InvoiceRow:
    """A WHMCS invoice with the allocations that pay it."""

    id: int
    invoice_id: str
    invoice_num: str | None
    client_name: str | None
    company_name: str | None
    issued_on: dt.date
    due_on: dt.date | None
    total_minor: int
    balance_minor: int
    currency: str
    status: str
    allocated_minor: int
    allocations: tuple[AllocationView, ...]


@dataclass(frozen=True)
class AuditRow:
    """One audit log entry."""

    id: int
    seq: int
    occurred_at: dt.datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    details: dict[str, Any]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows, newest first; `next_after` continues after the last row (None: end)."""

    rows: tuple[T, ...]
    next_after: int | None


@dataclass(frozen=True)
class ChainVerdict:
    """The outcome of verifying the tenant's audit chain, as one sentence and its figures."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    message: str


def _limit(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))


def _like(text: str) -> str:
    escaped = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_FIELD_SEP = "\x1f"  # the unit separator: joins the searched fields, never typed in a search


def _transaction_search(search: str) -> ColumnElement[bool]:
    """Payer, reference or source id contains `search` (any case).

    One lower-cased LIKE over the three fields joined by a separator, not an ILIKE per field:
    under row-level security no index can serve a LIKE (not leakproof, so a pg_trgm index is
    never used, EXPLAIN as the application role shows), so the search is a scan of the tenant's
    transactions, and one lower() and one LIKE per row scan about twice as fast. A match cannot
    span two fields: the pattern holds no wildcard but at its ends and no separator (a search
    holding one uses the per-field form)."""
    pattern = _like(search)
    fields = (Transaction.counterparty, Transaction.reference, Transaction.source_id)
    if _FIELD_SEP in pattern:
        return or_(*(col.ilike(pattern, escape="\\") for col in fields))
    joined = func.coalesce(fields[0], "") + _FIELD_SEP + func.coalesce(fields[1], "")
    joined = joined + _FIELD_SEP + fields[2]
    return func.lower(joined).like(func.lower(pattern), escape="\\")


def _allocation_views(
    session: Session, column: Any, keys: list[str]
) -> dict[str, list[AllocationView]]:
    """The allocations naming `keys` (by the indexed invoice or transaction column), each with
    whether it is live (as `live_allocation`: not a reversal, and no reversal points at it)."""
    found: dict[str, list[AllocationView]] = defaultdict(list)
    if not keys:
        return found
    rows = list(session.scalars(select(Allocation).where(column.in_(keys)).order_by(Allocation.id)))
    # The reversals of this page's rows, in one query: a correlated NOT EXISTS per row read every
    # allocation once per row where `reverses_id` has no index (25 s for 50 invoices at 600k).
    reversed_ids = set(
        session.scalars(
            select(Allocation.reverses_id).where(
                Allocation.reverses_id.is_not(None),
                Allocation.reverses_id.in_([a.id for a in rows if a.reverses_id is None]),
            )
        )
    )
    for alloc in rows:
        view = AllocationView(
            alloc.id,
            alloc.transaction_ref,
            alloc.invoice_id,
            alloc.amount_minor,
            alloc.currency,
            alloc.rule,
            alloc.confidence,
            alloc.decision,
            alloc.origin,
            alloc.created_by,
            alloc.created_at,
            alloc.reverses_id is None and alloc.id not in reversed_ids,
        )
        key = alloc.transaction_ref if column is Allocation.transaction_ref else alloc.invoice_id
        found[key].append(view)
    return found


def _page(rows: list[T], ids: list[int], limit: int) -> Page[T]:
    more = len(rows) > limit
    return Page(tuple(rows[:limit]), ids[limit - 1] if more else None)


def transactions_page(
    engine: Engine,
    acting: Actor | str,
    tenant_id: str,
    *,
    search: str = "",
    source: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    after: int | None = None,
    limit: int = 50,
) -> Page[TransactionRow]:
    """Transactions newest first, filtered by free text (payer, reference, id), source and dates."""
    size = _limit(limit)
    query = select(Transaction, transaction_ref_of().label("ref")).order_by(Transaction.id.desc())
    if search.strip():
        query = query.where(_transaction_search(search))
    if source:
        query = query.where(Transaction.source == source)
    if date_from:
        query = query.where(Transaction.booked_on >= date_from)
    if date_to:
        query = query.where(Transaction.booked_on <= date_to)
    if after is not None:
        query = query.where(Transaction.id < after)
    with tenant_session(engine, tenant_id) as session:
        require(session, acting, tenant_id, Permission.READ)
        found = session.execute(query.limit(size + 1)).all()
        allocs = _allocation_views(session, Allocation.transaction_ref, [r for _, r in found])
    rows = []
    for tx, ref in found:
        views = allocs.get(ref, [])
        rows.append(
            TransactionRow(
                tx.id,
                ref,
                tx.source,
                tx.kind,
                tx.booked_on,
                tx.amount_minor,
                tx.currency,
                tx.counterparty,
                tx.reference,
                sum(v.amount_minor for v in views if v.live),
                tuple(views),
            )
        )
    return _page(rows, [tx.id for tx, _ in found], size)


def invoices_page(
    engine: Engine,
    acting: Actor | str,
    tenant_id: str,
    *,
    search: str = "",
    status: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> Page[InvoiceRow]:
    """Invoices newest first, filtered by free text (id, number, client) and WHMCS status."""
    size = _limit(limit)
    query = select(Invoice).order_by(Invoice.id.desc())
    if search.strip():
        pattern = _like(search)
        cols = (Invoice.invoice_id, Invoice.invoice_num, Invoice.client_name, Invoice.company_name)
        query = query.where(or_(*(c.ilike(pattern, escape="\\") for c in cols)))
    if status:
        query = query.where(Invoice.status == status)
    if after is not None:
        query = query.where(Invoice.id < after)
    with tenant_session(engine, tenant_id) as session:
        require(session, acting, tenant_id, Permission.READ)
        found = list(session.scalars(query.limit(size + 1)))
        allocs = _allocation_views(session, Allocation.invoice_id, [i.invoice_id for i in found])
    rows = [
        InvoiceRow(
            i.id,
            i.invoice_id,
            i.invoice_num,
            i.client_name,
            i.company_name,
            i.issued_on,
            i.due_on,
            i.total_minor,
            i.balance_minor,
            i.currency,
            i.status,
            sum(v.amount_minor for v in allocs.get(i.invoice_id, []) if v.live),
            tuple(allocs.get(i.invoice_id, [])),
        )
        for i in found
    ]
    return _page(rows, [i.id for i in found], size)


def audit_page(
    engine: Engine,
    acting: Actor | str,
    tenant_id: str,
    *,
    search: str = "",
    actor: str | None = None,
    action: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> Page[AuditRow]:
    """Audit entries newest first; free text over actor, action, entity and entity id."""
    size = _limit(limit)
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if search.strip():
        pattern = _like(search)
        cols = (AuditEntry.actor, AuditEntry.action, AuditEntry.entity, AuditEntry.entity_id)
        query = query.where(or_(*(c.ilike(pattern, escape="\\") for c in cols)))
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    if after is not None:
        query = query.where(AuditEntry.id < after)
    with tenant_session(engine, tenant_id) as session:
        require(session, acting, tenant_id, Permission.READ)
        found = list(session.scalars(query.limit(size + 1)))
    rows = [
        AuditRow(
            e.id, e.seq, e.occurred_at, e.actor, e.action, e.entity, e.entity_id, dict(e.details)
        )
        for e in found
    ]
    return _page(rows, [e.id for e in found], size)


def verify_audit_chain(
    engine: Engine, acting: Actor | str, tenant_id: str, key: audit.ChainKey | None = None
) -> ChainVerdict:
    """Walk the tenant's audit chain and say whether every entry verifies, or where it breaks."""
    chain_key = key or audit.resolve_chain_key()
    with tenant_session(engine, tenant_id) as session:
        require(session, acting, tenant_id, Permission.READ)
        report = audit.verify_chain(session, tenant_id, chain_key)
    if report.first_break is None:
        message = (
            f"the audit chain of {tenant_id} verifies: {report.entries} entries, head seq "
            f"{report.head_seq}"
        )
    else:
        message = f"the audit chain is broken: {report.first_break}"
    return ChainVerdict(report.ok, report.entries, report.head_seq, report.head_hash, message)
