"""`build_report`: the auditor's reconciliation report of one tenant and period, read in one
read-only transaction after checking the acting user may export it.

The allocation detail (it may hold a million rows) is not read here: the report carries a stream
that reads it later in its own transaction, bounded by the highest allocation id seen here, so it
yields exactly the rows this transaction's figures were computed from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, text
from sqlalchemy.orm import Session

from recon.audit import ChainKey, resolve_chain_key, verify_chain
from recon.db.base import utcnow
from recon.db.models import (
    Allocation,
    Payout,
    QuarantinedRow,
    ReconException,
    RecordedPayment,
    Run,
    Tenant,
    Transaction,
    ValidationResult,
)
from recon.db.tenancy import tenant_session
from recon.errors import ConfigError
from recon.reports import tieouts
from recon.reports.model import (
    AllocationLine,
    AuditVerdict,
    FailedValidation,
    Header,
    ManualDecision,
    OpenException,
    QuarantinedLine,
    Report,
)
from recon.reports.queries import (
    ENGINE,
    Period,
    allocation_rows,
    in_period,
    read_only,
    reversals,
    txn_ref,
)
from recon.review.access import Actor, Permission, require

YIELD = 5000


def build_report(
    engine: Engine,
    acting: Actor | str,
    tenant_id: str,
    date_from: dt.date,
    date_to: dt.date,
    *,
    chain_key: ChainKey | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """The report of `tenant_id` for `date_from`..`date_to` (Permission EXPORT).

    PermissionDeniedError when `acting` may not export this tenant; SecretUnavailableError
    when the audit chain key (needed to verify the chain) is missing.
    """
    if date_to < date_from:
        raise ConfigError(f"the period ends ({date_to}) before it starts ({date_from})")
    key = chain_key or resolve_chain_key()
    with tenant_session(engine, tenant_id) as session:
        actor = require(session, acting, tenant_id, Permission.EXPORT)
        read_only(session)
        chain = _chain_check(engine, tenant_id, key)  # runs beside the queries below
        max_id = session.scalar(select(func.coalesce(func.max(Allocation.id), 0)))
        period = Period(date_from, date_to, int(max_id or 0))
        reversed_by = reversals(session, period)
        generated_at = now or utcnow()
        allocated, count = tieouts.allocation_totals(session, period)
        return Report(
            header=_header(session, actor, tenant_id, period, generated_at),
            summary=tieouts.summary(session, period, allocated),
            bank=tieouts.bank(session, period),
            payouts=tieouts.payouts(session, period),
            recorded=tieouts.recorded(session, period, set(reversed_by)),
            balances=tieouts.balances(session, period),
            allocations=partial(_allocations, engine, tenant_id, period, reversed_by),
            allocation_count=count,
            open_exceptions=_open_exceptions(session, period, generated_at),
            decisions=_decisions(session, period),
            quarantined=_quarantined(session, period),
            failed_validations=_failed_validations(session, period),
            audit=chain.result() if chain is not None else _audit(session, tenant_id, key),
        )


def _header(
    session: Session, actor: Actor, tenant_id: str, period: Period, at: dt.datetime
) -> Header:
    tenant = session.get(Tenant, tenant_id)
    try:
        software = version("whmcs-recon")
    except PackageNotFoundError:  # pragma: no cover - the project is always installed
        software = "unknown"
    revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return Header(
        tenant_id=tenant_id,
        tenant_name=tenant.name if tenant else tenant_id,
        date_from=period.date_from,
        date_to=period.date_to,
        generated_at=at,
        generated_by=actor.email,
        software_version=software,
        schema_revision=str(revision or "none"),
    )


def _allocations(
    engine: Engine, tenant_id: str, period: Period, reversed_by: dict[int, int]
) -> Iterator[AllocationLine]:
    """Every allocation row of the period's payments, by booking day then as written, streamed."""
    with tenant_session(engine, tenant_id) as session:
        read_only(session)
        a = Allocation
        rows = session.execute(
            select(
                a.id,
                a.created_at,
                Transaction.booked_on,
                Transaction.source,
                a.transaction_ref,
                Transaction.counterparty,
                Transaction.reference,
                a.invoice_id,
                a.amount_minor,
                a.currency,
                a.rule,
                a.confidence,
                a.decision,
                a.origin,
                a.created_by,
                a.reverses_id,
                a.note,
            )
            .join(Transaction, Allocation.transaction_ref == txn_ref())
            .where(in_period(period), allocation_rows(period))
            .order_by(Transaction.booked_on, Allocation.id)
            .execution_options(yield_per=YIELD)
        )
        for row in rows:
            values: list[Any] = list(row)
            note = values.pop()
            values += [reversed_by.get(values[0]), note]
            yield AllocationLine(*values)


E = ReconException
OPEN_COLUMNS = (E.id, E.kind, E.created_at, E.transaction_ref, E.invoice_id, E.subject_ref,
                E.amount_minor, E.currency, E.assignee, E.detail)  # fmt: skip
"""What the open exceptions section reads of an exception (plain rows: an ORM object per
exception cost more than the query over a period's thousands of open ones)."""
RESOLVED_COLUMNS = (E.id, E.kind, E.status, E.resolved_at, E.updated_at, E.resolved_by,
                    E.transaction_ref, E.invoice_id, E.amount_minor, E.currency,
                    E.resolution_kind, E.resolution)  # fmt: skip
"""What the decisions section reads of a resolved exception."""


def _period_exceptions(
    session: Session, period: Period, columns: tuple[Any, ...], *criteria: object
) -> list[tuple[Any, ...]]:
    """Exceptions about the period: its payments, its WHMCS payments and payouts, or (about
    nothing else) opened in it; `columns` of each (the first is the id), then the payer when it
    is about a payment (else None), in id order."""
    about_payments: list[tuple[Any, ...]] = [
        tuple(row)
        for row in session.execute(
            select(*columns, Transaction.counterparty)
            .join(Transaction, ReconException.transaction_ref == txn_ref())
            .where(in_period(period), *criteria)  # type: ignore[arg-type]
        )
    ]
    recorded = select(RecordedPayment.whmcs_txn_id).where(
        RecordedPayment.recorded_on >= period.date_from,
        RecordedPayment.recorded_on <= period.date_to,
    )
    payouts = select(Payout.payout_id).where(
        Payout.arrival_on >= period.date_from, Payout.arrival_on <= period.date_to
    )
    others = session.execute(
        select(*columns).where(
            ReconException.transaction_ref.is_(None),
            or_(
                ReconException.subject_ref.in_(recorded),
                ReconException.subject_ref.in_(payouts),
                and_(
                    ReconException.subject_ref.is_(None),
                    ReconException.created_at >= period.start,
                    ReconException.created_at < period.end,
                ),
            ),
            *criteria,  # type: ignore[arg-type]
        )
    )
    found = [*about_payments, *((*row, None) for row in others)]
    return sorted(found, key=lambda row: row[0])


def _days(later: dt.datetime, earlier: dt.datetime) -> int:
    return (later.replace(tzinfo=None) - earlier.replace(tzinfo=None)).days


def _open_exceptions(
    session: Session, period: Period, at: dt.datetime
) -> tuple[OpenException, ...]:
    rows = _period_exceptions(session, period, OPEN_COLUMNS, ReconException.status == "open")
    # a row: id, kind, created_at, transaction_ref, invoice_id, subject_ref, amount_minor,
    # currency, assignee, detail (OPEN_COLUMNS), then the payer
    return tuple(
        OpenException(
            row[0],
            row[1],
            row[2],
            max(_days(at, row[2]), 0),
            row[3],
            row[10],
            row[4],
            row[5],
            row[6],
            row[7],
            row[8],
            row[9],
        )
        for row in rows
    )


def _decisions(session: Session, period: Period) -> tuple[ManualDecision, ...]:
    """Allocations people made, every reversal, and exceptions people resolved."""
    found: list[ManualDecision] = []
    for a in session.scalars(
        select(Allocation)
        .join(Transaction, Allocation.transaction_ref == txn_ref())
        .where(
            in_period(period),
            allocation_rows(period),
            or_(
                Allocation.created_by != ENGINE,
                Allocation.origin != ENGINE,
                Allocation.reverses_id.is_not(None),
            ),
        )
        .order_by(Allocation.id)
    ):
        what = f"reversal of allocation {a.reverses_id}" if a.reverses_id else "allocation"
        found.append(
            ManualDecision(
                a.created_at,
                a.created_by,
                what,
                a.id,
                a.transaction_ref,
                a.invoice_id,
                a.amount_minor,
                a.currency,
                f"{a.decision} {a.rule}",
                a.note,
            )
        )
    resolved = ReconException.resolved_by.is_not(None)
    for row in _period_exceptions(session, period, RESOLVED_COLUMNS, resolved):
        id_, kind, status, resolved_at, updated_at, resolved_by, ref, invoice, amount = row[:9]
        currency, resolution_kind, resolution = row[9:12]
        found.append(
            ManualDecision(
                resolved_at or updated_at,
                resolved_by or "",
                f"{kind} exception {status}",
                id_,
                ref,
                invoice,
                amount,
                currency,
                resolution_kind or "",
                resolution,
            )
        )
    return tuple(sorted(found, key=lambda d: (d.at.replace(tzinfo=None), d.what, d.ref_id)))


def _quarantined(session: Session, period: Period) -> tuple[QuarantinedLine, ...]:
    rows = session.scalars(
        select(QuarantinedRow)
        .where(
            or_(
                and_(
                    QuarantinedRow.booked_on >= period.date_from,
                    QuarantinedRow.booked_on <= period.date_to,
                ),
                and_(
                    QuarantinedRow.booked_on.is_(None),
                    QuarantinedRow.created_at >= period.start,
                    QuarantinedRow.created_at < period.end,
                ),
            )
        )
        .order_by(QuarantinedRow.id)
    )
    return tuple(
        QuarantinedLine(
            q.id,
            q.provider,
            q.dataset,
            q.account_ref,
            q.row_key,
            q.booked_on,
            q.amount_minor,
            q.currency,
            "; ".join(str(r) for r in q.reasons or []),
            q.created_at,
        )
        for q in rows
    )


def _failed_validations(session: Session, period: Period) -> tuple[FailedValidation, ...]:
    rows = session.scalars(
        select(ValidationResult)
        .join(Run, Run.id == ValidationResult.run_id)
        .where(
            ValidationResult.success.is_(False),
            Run.window_from <= period.date_to,
            Run.window_to >= period.date_from,
        )
        .order_by(ValidationResult.id)
    )
    return tuple(
        FailedValidation(
            v.run_id, v.dataset, v.suite, v.rows_evaluated, v.rows_failed, v.held, v.created_at
        )
        for v in rows
    )


def _chain_check(engine: Engine, tenant_id: str, key: ChainKey) -> Future[AuditVerdict] | None:
    """On PostgreSQL, the chain's verdict computed in a thread with its own connection while the
    report's queries run (the walk is Python work, the queries the server's, so they overlap on
    two cores); None elsewhere (SQLite: in the report's own transaction). The report reads at
    read committed, each query its own snapshot, so a verdict from its own transaction is what
    the report's would be."""
    if engine.dialect.name != "postgresql":
        return None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-chain")
    try:
        return pool.submit(_audit_apart, engine, tenant_id, key)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its walk


def _audit_apart(engine: Engine, tenant_id: str, key: ChainKey) -> AuditVerdict:
    with tenant_session(engine, tenant_id) as session:
        read_only(session)
        return _audit(session, tenant_id, key)


def _audit(session: Session, tenant_id: str, key: ChainKey) -> AuditVerdict:
    report = verify_chain(session, tenant_id, key)
    verdict = "verified" if report.ok else f"BROKEN: {report.first_break}"
    return AuditVerdict(report.entries, report.head_seq, report.head_hash, key.key_id, verdict)
