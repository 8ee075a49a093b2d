"""The work queue: exceptions filtered, sorted and keyset-paginated, and an overview of them.

Reads need the READ permission on the tenant. Filters and sorts run in SQL; a page is fetched
with a keyset condition on (sort key, id), never OFFSET, so page 1,000 costs what page 1 does.
The free-text search reads the payer and reference kept on the exception row (revision 0011,
`fill_search_text`), never the transactions join; a page's payments are read in a second query by
the transactions' natural key (an index lookup per row). The reads shared with an exception's
detail (a payment by its ref, its landed provider record) live here too.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, case, func, or_, select, tuple_
from sqlalchemy.orm import Session

from recon.db.base import utcnow
from recon.db.models import RawPayload, ReconException, Transaction
from recon.db.tenancy import tenant_session
from recon.errors import RuleViolationError
from recon.money import MoneyError, to_minor
from recon.redaction import MASK, redact
from recon.review.access import Actor, Permission, require
from recon.review.views import (
    AGE_BUCKETS,
    UNASSIGNED,
    ExceptionView,
    OverviewRow,
    QueueCursor,
    QueueFilter,
    QueueOverview,
    QueuePage,
    QueueSort,
    as_utc,
    decimal_text,
)

MAX_PAGE = 500
_E = ReconException


def parse_amount_bound(text: str, currency: str | None) -> int:
    """A `--min`/`--max` decimal string as minor units: in `currency`'s decimals when one is
    given, else with two decimals (the common case); RuleViolationError if it is not a number."""
    try:
        if currency:
            return to_minor(text, currency.strip().upper())
        value = Decimal(text.strip()).scaleb(2)
        if not value.is_finite() or value != value.to_integral_value():
            raise MoneyError(f"{text!r} has more than two decimals; pass --currency")
        return int(value)
    except (MoneyError, InvalidOperation):
        raise RuleViolationError(
            f"{text!r} is not an amount; write it as a decimal such as 12.50"
        ) from None


def _filters(filters: QueueFilter, now: dt.datetime) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if filters.kind:
        where.append(_E.kind == filters.kind)
    if filters.status:
        where.append(_E.status == filters.status)
    if filters.assignee == UNASSIGNED:
        where.append(_E.assignee.is_(None))
    elif filters.assignee:
        where.append(func.lower(_E.assignee) == filters.assignee.strip().lower())
    if filters.source:
        where.append(_E.transaction_ref.like(f"{_escape(filters.source.strip())}:%", escape="\\"))
    if filters.currency:
        where.append(_E.currency == filters.currency.strip().upper())
    if filters.min_minor is not None:
        where.append(_E.amount_minor >= filters.min_minor)
    if filters.max_minor is not None:
        where.append(_E.amount_minor <= filters.max_minor)
    if filters.older_than_days is not None:
        where.append(_E.created_at < now - dt.timedelta(days=filters.older_than_days))
    return where


def _search(filters: QueueFilter) -> ColumnElement[bool] | None:
    """The free-text condition on `search_text` (None when there is no search)."""
    if not (filters.search and filters.search.strip()):
        return None
    pattern = f"%{_escape(filters.search.strip().lower())}%"
    return _E.search_text.like(pattern, escape="\\")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _sort_key(sort: QueueSort) -> tuple[ColumnElement[object], bool]:
    """The sort column and whether it runs descending (the id breaks ties the same way)."""
    if sort is QueueSort.AMOUNT:
        return func.coalesce(_E.amount_minor, 0), True
    if sort is QueueSort.KIND:
        return _E.kind, False  # type: ignore[return-value]
    return _E.created_at, False  # type: ignore[return-value]


def _cursor_value(cursor: QueueCursor) -> object:
    try:
        if cursor.sort is QueueSort.AMOUNT:
            return int(cursor.key)
        if cursor.sort is QueueSort.AGE:
            return dt.datetime.fromisoformat(cursor.key)
    except ValueError:
        raise RuleViolationError("the queue cursor is damaged; list from the start") from None
    return cursor.key


def _key_text(sort: QueueSort, row: ReconException) -> str:
    if sort is QueueSort.AMOUNT:
        return str(row.amount_minor or 0)
    if sort is QueueSort.KIND:
        return row.kind
    return row.created_at.isoformat()


def _after(sort: QueueSort, cursor: QueueCursor) -> ColumnElement[bool]:
    if cursor.sort is not sort:
        raise RuleViolationError(
            f"this cursor continues a listing sorted by {cursor.sort.value}, not {sort.value}"
        )
    column, descending = _sort_key(sort)
    value = _cursor_value(cursor)
    if descending:
        return or_(column < value, and_(column == value, _E.id < cursor.last_id))
    return or_(column > value, and_(column == value, _E.id > cursor.last_id))


SEARCH_WINDOW = 1000
"""How many rows, in queue order, a free-text search reads by the queue's index first."""


def _searched(
    session: Session,
    where: list[ColumnElement[bool]],
    search: ColumnElement[bool],
    order: tuple[ColumnElement[Any], ...],
    wanted: int,
) -> list[ReconException]:
    """The first `wanted` rows matching `where` and `search`, in the AGE order (created, id).

    Under row-level security PostgreSQL ignores the column's statistics for a LIKE (not
    leakproof) and guesses that almost nothing matches, so one query scans and sorts every
    open row even when the first page is among the first hundred in queue order. This reads
    the first `SEARCH_WINDOW` ids in queue order (from ix_exceptions_age), keeps the matches
    among them, and scans only what comes after them when those are too few: the same rows in
    the same order as the one query."""
    window = session.execute(
        select(_E.id, _E.created_at).where(*where).order_by(*order).limit(SEARCH_WINDOW)
    ).all()
    ids = [row.id for row in window]
    rows = list(
        session.scalars(select(_E).where(_E.id.in_(ids), search).order_by(*order).limit(wanted))
    )
    if len(rows) >= wanted or len(window) < SEARCH_WINDOW:
        return rows
    last = window[-1]
    after = or_(
        _E.created_at > last.created_at,
        and_(_E.created_at == last.created_at, _E.id > last.id),
    )
    rest = select(_E).where(*where, search, after).order_by(*order).limit(wanted - len(rows))
    return rows + list(session.scalars(rest))


def list_exceptions(
    engine: Engine,
    acting: Actor | str,
    tenant_id: str,
    filters: QueueFilter | None = None,
    *,
    sort: QueueSort = QueueSort.AGE,
    after: QueueCursor | None = None,
    limit: int = 50,
    now: dt.datetime | None = None,
) -> QueuePage:
    """One page of the tenant's exceptions matching `filters`, in `sort` order (READ)."""
    filters = filters or QueueFilter()
    limit = max(1, min(limit, MAX_PAGE))
    now = now or utcnow()
    column, descending = _sort_key(sort)
    order = (column.desc(), _E.id.desc()) if descending else (column.asc(), _E.id.asc())
    where = _filters(filters, now)
    search = _search(filters)
    if after is not None:
        where.append(_after(sort, after))
    with tenant_session(engine, tenant_id) as session:
        require(session, acting, tenant_id, Permission.READ)
        if search is not None and sort is QueueSort.AGE:
            rows = _searched(session, where, search, order, limit + 1)
        else:
            where += [search] if search is not None else []
            rows = list(session.scalars(select(_E).where(*where).order_by(*order).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        items = tuple(exception_views(session, rows, now))
    next_cursor = (
        QueueCursor(sort, _key_text(sort, rows[-1]), rows[-1].id) if more and rows else None
    )
    return QueuePage(items, next_cursor, sort)


def _split(ref: str) -> tuple[str, str, str] | None:
    parts = ref.split(":", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def payments_by_ref(session: Session, refs: Iterable[str | None]) -> dict[str, Transaction]:
    """The transactions named by `refs` (by their natural key), keyed by transaction_ref."""
    keys = sorted({key for ref in refs if ref and (key := _split(ref)) is not None})
    found: dict[str, Transaction] = {}
    for start in range(0, len(keys), 200):
        chunk = keys[start : start + 200]
        for txn in session.scalars(
            select(Transaction).where(
                tuple_(Transaction.source, Transaction.account_ref, Transaction.source_id).in_(
                    chunk
                )
            )
        ):
            found[f"{txn.source}:{txn.account_ref}:{txn.source_id}"] = txn
    return found


NO_SEARCH_TEXT: dict[str, str | None] = {"payer": None, "reference": None, "search_text": None}


def search_text_of(payer: str | None, reference: str | None) -> str | None:
    """What the queue's free-text search scans: payer and reference, lower case, one a line."""
    parts = [part.lower() for part in (payer, reference) if part]
    return "\n".join(parts) or None


def search_texts(session: Session, refs: Iterable[str | None]) -> dict[str, dict[str, str | None]]:
    """Transaction ref -> the exception columns its payment fills for the queue's free-text
    search (`payer`, `reference`, `search_text`); refs with no loaded transaction are left out
    (use NO_SEARCH_TEXT). Never flushes."""
    keys = sorted({key for ref in refs if ref and (key := _split(ref)) is not None})
    natural = (Transaction.source, Transaction.account_ref, Transaction.source_id)
    found: dict[str, dict[str, str | None]] = {}
    with session.no_autoflush:
        for start in range(0, len(keys), 200):
            statement = select(*natural, Transaction.counterparty, Transaction.reference).where(
                tuple_(*natural).in_(keys[start : start + 200])
            )
            for source, account, source_id, payer, reference in session.execute(statement):
                payer = payer[:500] if payer else payer
                found[f"{source}:{account}:{source_id}"] = {
                    "payer": payer,
                    "reference": reference,
                    "search_text": search_text_of(payer, reference),
                }
    return found


def fill_search_text(session: Session, rows: Iterable[ReconException]) -> None:
    """Copy each row's payment's payer and reference onto it, which the queue's free-text
    search reads (whoever opens an exception calls it before the row is first written)."""
    rows = list(rows)
    texts = search_texts(session, (row.transaction_ref for row in rows))
    for row in rows:
        for column, value in texts.get(row.transaction_ref or "", {}).items():
            setattr(row, column, value)


def exception_views(
    session: Session, rows: Sequence[ReconException], now: dt.datetime
) -> list[ExceptionView]:
    """Views of `rows` with their payment's source, payer and reference."""
    payments = payments_by_ref(session, (row.transaction_ref for row in rows))
    return [view_of(row, payments.get(row.transaction_ref or ""), now) for row in rows]


def view_of(row: ReconException, payment: Transaction | None, now: dt.datetime) -> ExceptionView:
    """The view of one exception row (and its payment, if it has one)."""
    created = as_utc(row.created_at) or now
    source = payment.source if payment is not None else None
    if source is None and row.transaction_ref and _split(row.transaction_ref):
        source = row.transaction_ref.split(":", 1)[0]
    return ExceptionView(
        id=row.id,
        kind=row.kind,
        status=row.status,
        amount_minor=row.amount_minor,
        currency=row.currency,
        amount=decimal_text(row.amount_minor, row.currency),
        assignee=row.assignee,
        version=row.version,
        created_at=created,
        updated_at=as_utc(row.updated_at) or created,
        age_days=max(0, (now - created).days),
        transaction_ref=row.transaction_ref,
        invoice_id=row.invoice_id,
        subject_ref=row.subject_ref,
        detail=row.detail or "",
        source=source,
        payer=payment.counterparty if payment is not None else row.payer,
        reference=payment.reference if payment is not None else row.reference,
        resolution_kind=row.resolution_kind,
        resolution_note=row.resolution,
        resolved_by=row.resolved_by,
        resolved_at=as_utc(row.resolved_at),
        closed_reason=row.closed_reason,
        updated_by=row.updated_by,
    )


# -- the landed provider record -------------------------------------------------------------------

_ID_KEYS = ("id", "transactionId", "internalTransactionId", "entryReference", "transid")
_SECRET_KEY = re.compile(r"(?i)(secret|token|password|passwd|api[_-]?key|authorization)")


def raw_record_of(session: Session, payload_id: int | None, source_id: str) -> Any:
    """The record with id `source_id` inside the landed page `payload_id`, as parsed JSON with
    secrets masked; None when the page is gone, not JSON, or does not hold it."""
    if payload_id is None:
        return None
    body = session.scalar(select(RawPayload.body).where(RawPayload.id == payload_id))
    if body is None:
        return None
    try:
        page = json.loads(bytes(body).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    found = _find_record(page, source_id)
    return _scrub(found) if found is not None else None


def _find_record(node: Any, source_id: str) -> dict[str, Any] | None:
    if isinstance(node, dict):
        if any(str(node.get(k)) == source_id for k in _ID_KEYS if node.get(k) is not None):
            return node
        children: list[Any] = list(node.values())
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        if (hit := _find_record(child, source_id)) is not None:
            return hit
    return None


def _scrub(node: Any) -> Any:
    """Mask values under secret-looking keys and registered secrets or credential shapes."""
    if isinstance(node, dict):
        return {k: MASK if _SECRET_KEY.search(str(k)) else _scrub(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_scrub(v) for v in node]
    if isinstance(node, str):
        return redact(node)
    return node


def _bucket_sums(now: dt.datetime) -> list[ColumnElement[int]]:
    """Per age bucket, a count and a sum, as conditional aggregates (one pass, no sort)."""
    edges = [now - dt.timedelta(days=days) for days in (7, 30, 90)]
    newer: list[dt.datetime | None] = [None, *edges]
    older: list[dt.datetime | None] = [*edges, None]
    columns: list[ColumnElement[int]] = []
    for low, high in zip(older, newer, strict=True):
        inside = and_(
            *([_E.created_at >= low] if low is not None else []),
            *([_E.created_at < high] if high is not None else []),
        )
        columns.append(func.sum(case((inside, 1), else_=0)))
        columns.append(func.sum(case((inside, func.coalesce(_E.amount_minor, 0)), else_=0)))
    return columns


def queue_overview(
    engine: Engine, acting: Actor | str, tenant_id: str, *, now: dt.datetime | None = None
) -> QueueOverview:
    """Counts and sums (per currency) of the tenant's exceptions by status, kind and age bucket
    (0-7, 8-30, 31-90, >90 days), aggregated in SQL in one pass (READ)."""
    now = now or utcnow()
    keys = (_E.status, _E.kind, _E.currency)
    query = select(*keys, *_bucket_sums(now)).group_by(*keys)
    with tenant_session(engine, tenant_id) as session:
        require(session, acting, tenant_id, Permission.READ)
        result = session.execute(query).all()
    rows = []
    for status, kind, currency, *sums in result:
        for index, label in enumerate(AGE_BUCKETS):
            count, total = int(sums[2 * index] or 0), int(sums[2 * index + 1] or 0)
            if count:
                rows.append(
                    OverviewRow(
                        status=status,
                        kind=kind,
                        age_bucket=label,
                        currency=currency,
                        count=count,
                        amount_minor=total,
                        amount=decimal_text(total, currency),
                    )
                )
    rows.sort(key=lambda r: (r.status, r.kind, AGE_BUCKETS.index(r.age_bucket), r.currency or ""))
    return QueueOverview(now, tuple(rows))
