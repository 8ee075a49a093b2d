"""Read-only figures for the ops UI's Overview and Runs pages, aggregated in the database.

Every function checks READ on the tenant first (in its own transaction) and returns frozen
dataclasses. Money is summed per currency in integer minor units; rates are plain fractions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, case, exists, func, literal, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from recon.db.base import utcnow
from recon.db.engine import without_jit
from recon.db.models import (
    Allocation,
    QuarantinedRow,
    ReconException,
    Run,
    Transaction,
    ValidationResult,
)
from recon.db.tenancy import tenant_session
from recon.locks import TenantBusyError, tenant_lock
from recon.review.access import Actor, Permission, require

CUSTOMER_KINDS = ("payment", "charge")
"""Transaction kinds that are money a customer paid (not fees, refunds or payouts)."""
AGE_BUCKETS: tuple[tuple[str, int], ...] = (("0-7 d", 7), ("8-30 d", 30), ("31-90 d", 90))
OLDEST_BUCKET = "> 90 d"
STUCK_AFTER = dt.timedelta(hours=6)


@dataclass(frozen=True)
class Amount:
    """A sum of money in one currency (minor units)."""

    currency: str
    minor: int


@dataclass(frozen=True)
class DayRate:
    """Of the customer payments booked on `day`, how many carry a live allocation."""

    day: dt.date
    payments: int
    matched: int

    @property
    def rate(self) -> float:
        """Matched share of the day's payments (0..1)."""
        return self.matched / self.payments if self.payments else 0.0


@dataclass(frozen=True)
class AgeKindCount:
    """Open exceptions of one kind in one age bucket."""

    age: str
    kind: str
    count: int


@dataclass(frozen=True)
class SourceAmount:
    """Money received from one source in one currency."""

    source: str
    currency: str
    minor: int


@dataclass(frozen=True)
class RunView:
    """One run as the UI shows it; `shown_status` says `stuck` for a running row nobody writes."""

    id: str
    kind: str
    status: str
    stuck: bool
    window_from: dt.date
    window_to: dt.date
    sources: tuple[str, ...]
    started_at: dt.datetime
    finished_at: dt.datetime | None
    duration_seconds: float | None
    counts: dict[str, Any]
    error: str | None
    validation_failures: tuple[ValidationFailure, ...] = ()
    quarantined: tuple[QuarantineView, ...] = ()

    @property
    def shown_status(self) -> str:
        """`stuck` for a running row whose writer is gone, else the stored status."""
        return "stuck" if self.stuck else self.status


@dataclass(frozen=True)
class ValidationFailure:
    """An expectation suite that failed on a batch of a run."""

    dataset: str
    suite: str
    rows_failed: int
    rows_evaluated: int
    held: bool
    expectations: tuple[str, ...]


@dataclass(frozen=True)
class QuarantineView:
    """A quarantined provider record with the reasons (the expectations it broke)."""

    provider: str
    dataset: str
    row_key: str
    booked_on: dt.date | None
    amount_minor: int | None
    currency: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Overview:
    """What a finance lead looks at first, for one tenant and period."""

    tenant_id: str
    date_from: dt.date
    date_to: dt.date
    received: tuple[Amount, ...]
    allocated_auto: tuple[Amount, ...]
    allocated_manual: tuple[Amount, ...]
    payments: int
    matched_payments: int
    open_count: int
    open_sum: tuple[Amount, ...]
    oldest_open_days: int | None
    match_rate_by_day: tuple[DayRate, ...]
    open_by_age_kind: tuple[AgeKindCount, ...]
    received_by_source: tuple[SourceAmount, ...]
    last_run: RunView | None

    @property
    def match_rate(self) -> float:
        """Share of the period's customer payments that carry a live allocation (0..1)."""
        return self.matched_payments / self.payments if self.payments else 0.0


def live_allocation() -> ColumnElement[bool]:
    """A live allocation: not a reversal, and not reversed by one (as tasks/decisions.py); the
    redundant `reverses_id IS NOT NULL` lets PostgreSQL read the reversals from the partial
    index ix_allocations_reversal (0013) instead of hashing every allocation."""
    reversal = aliased(Allocation)
    return and_(
        Allocation.reverses_id.is_(None),
        ~exists().where(reversal.reverses_id.is_not(None), reversal.reverses_id == Allocation.id),
    )


def transaction_ref_of() -> ColumnElement[str]:
    """`source:account_ref:source_id`, the ref allocations and exceptions name a payment by."""
    return Transaction.source + literal(":") + Transaction.account_ref + ":" + Transaction.source_id


def _period_payments(date_from: dt.date, date_to: dt.date) -> list[ColumnElement[bool]]:
    return [
        Transaction.booked_on.between(date_from, date_to),
        Transaction.amount_minor > 0,
        Transaction.kind.in_(CUSTOMER_KINDS),
    ]


def _amounts(totals: dict[str, int]) -> tuple[Amount, ...]:
    return tuple(Amount(c, m) for c, m in sorted(totals.items()))


def _add(totals: dict[Any, int], key: Any, minor: Any) -> None:
    totals[key] = totals.get(key, 0) + int(minor or 0)


@dataclass(frozen=True)
class _Period:
    """The period's payment figures (see `_period`)."""

    by_source: tuple[SourceAmount, ...]
    received: tuple[Amount, ...]
    allocated_auto: tuple[Amount, ...]
    allocated_manual: tuple[Amount, ...]
    days: tuple[DayRate, ...]


def _period(session: Session, date_from: dt.date, date_to: dt.date) -> _Period:
    """Received, allocated (automatically, by people) and the match rate per day of the
    period's customer payments in two aggregates: per (day, source, currency) the payments and
    their sum; per (day, currency) over (payment, live allocation) pairs the distinct payments
    (matched) and the auto and manual sums. A currency appears among the allocated sums only
    when one of its payments has a live allocation of that kind (as the per-figure queries
    before 0013 gave it; tests/ui/test_overview_queries.py compares both)."""
    period = _period_payments(date_from, date_to)
    received = session.execute(
        select(
            Transaction.booked_on,
            Transaction.source,
            Transaction.currency,
            func.count(),
            func.sum(Transaction.amount_minor),
        )
        .where(*period)
        .group_by(Transaction.booked_on, Transaction.source, Transaction.currency)
    ).all()
    auto = Allocation.decision == "auto"
    manual = Allocation.origin == "manual"
    allocated = session.execute(
        select(
            Transaction.booked_on,
            Transaction.currency,
            func.count(Transaction.id.distinct()),
            func.sum(case((auto, Allocation.amount_minor))),
            func.sum(case((manual, Allocation.amount_minor))),
        )
        .select_from(Allocation)
        .join(Transaction, Allocation.transaction_ref == transaction_ref_of())
        .where(live_allocation(), *period)
        .group_by(Transaction.booked_on, Transaction.currency)
    ).all()
    per_source: dict[tuple[str, str], int] = {}
    received_total: dict[str, int] = {}
    payments: dict[dt.date, int] = {}
    for day, source, currency, count, minor in received:
        _add(per_source, (source, currency), minor)
        _add(received_total, currency, minor)
        payments[day] = payments.get(day, 0) + int(count)
    matched: dict[dt.date, int] = {}
    auto_total: dict[str, int] = {}
    manual_total: dict[str, int] = {}
    for day, currency, count, auto_minor, manual_minor in allocated:
        matched[day] = matched.get(day, 0) + int(count)
        if auto_minor is not None:
            _add(auto_total, currency, auto_minor)
        if manual_minor is not None:
            _add(manual_total, currency, manual_minor)
    return _Period(
        by_source=tuple(SourceAmount(s, c, m) for (s, c), m in sorted(per_source.items())),
        received=_amounts(received_total),
        allocated_auto=_amounts(auto_total),
        allocated_manual=_amounts(manual_total),
        days=tuple(DayRate(d, n, matched.get(d, 0)) for d, n in sorted(payments.items())),
    )


def _age_counts(now: dt.datetime) -> list[ColumnElement[int]]:
    """Per age bucket (newest first, then `OLDEST_BUCKET`), a count of the rows created in it:
    a row is in the first bucket whose edge it is newer than (as a CASE cascade would place it)."""
    edges = [now - dt.timedelta(days=days) for _, days in AGE_BUCKETS]
    counts: list[ColumnElement[int]] = []
    for index in range(len(edges) + 1):
        newer = [(ReconException.created_at >= edge, 0) for edge in edges[:index]]
        inside = [(ReconException.created_at >= edges[index], 1)] if index < len(edges) else []
        counts.append(func.sum(case(*newer, *inside, else_=0 if index < len(edges) else 1)))
    return counts


def _open_exceptions(session: Session, now: dt.datetime) -> tuple[Any, ...]:
    """Open exceptions: how many, their sums per currency, the oldest one's age in days and the
    counts per (age bucket, kind), from one aggregate per (kind, currency) with a count per age
    bucket (a handful of groups, no sort)."""
    labels = [label for label, _ in AGE_BUCKETS] + [OLDEST_BUCKET]
    rows = session.execute(
        select(
            ReconException.kind,
            ReconException.currency,
            func.sum(ReconException.amount_minor),
            func.min(ReconException.created_at),
            *_age_counts(now),
        )
        .where(ReconException.status == "open")
        .group_by(ReconException.kind, ReconException.currency)
    ).all()
    count, oldest = 0, None
    sums: dict[str, int] = {}
    by_age: dict[tuple[str, str], int] = {}
    for kind, currency, minor, first, *per_bucket in rows:
        if currency is not None:
            _add(sums, currency, minor)
        for label, n in zip(labels, per_bucket, strict=True):
            count += int(n or 0)
            if n:
                _add(by_age, (label, kind), n)
        oldest = first if oldest is None or (first is not None and first < oldest) else oldest
    oldest_days = (now - _aware(oldest)).days if oldest is not None else None
    ages = tuple(AgeKindCount(a, k, n) for (a, k), n in sorted(by_age.items()))  # as SQL sorted
    return count, _amounts(sums), oldest_days, ages


def overview(
    engine: Engine, acting: Actor | str, tenant_id: str, date_from: dt.date, date_to: dt.date
) -> Overview:
    """The Overview page's figures and chart series for `tenant_id` over [date_from, date_to]."""
    now = utcnow()
    with tenant_session(engine, tenant_id) as session:
        require(session, acting, tenant_id, Permission.READ)
        without_jit(session)
        figures = _period(session, date_from, date_to)
        open_count, open_sum, oldest, ages = _open_exceptions(session, now)
        last = session.scalars(
            select(Run).order_by(Run.started_at.desc(), Run.id.desc()).limit(1)
        ).first()
    last_run = _views(engine, tenant_id, [last], now)[0] if last is not None else None
    return Overview(
        tenant_id=tenant_id,
        date_from=date_from,
        date_to=date_to,
        received=figures.received,
        allocated_auto=figures.allocated_auto,
        allocated_manual=figures.allocated_manual,
        payments=sum(d.payments for d in figures.days),
        matched_payments=sum(d.matched for d in figures.days),
        open_count=open_count,
        open_sum=open_sum,
        oldest_open_days=oldest,
        match_rate_by_day=figures.days,
        open_by_age_kind=ages,
        received_by_source=figures.by_source,
        last_run=last_run,
    )


# -- runs -------------------------------------------------------------------------------------------


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes for what was stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _writer_alive(engine: Engine, tenant_id: str) -> bool:
    try:
        with tenant_lock(engine, tenant_id):
            return False
    except TenantBusyError:
        return True


def _views(
    engine: Engine,
    tenant_id: str,
    runs: list[Run],
    now: dt.datetime,
    details: dict[str, tuple[tuple[ValidationFailure, ...], tuple[QuarantineView, ...]]]
    | None = None,
) -> list[RunView]:
    writer = any(r.status == "running" for r in runs) and _writer_alive(engine, tenant_id)
    views = []
    for run in runs:
        started = _aware(run.started_at)
        finished = _aware(run.finished_at) if run.finished_at else None
        running = run.status == "running"
        end = finished or (now if running else None)
        failures, quarantined = (details or {}).get(run.id, ((), ()))
        views.append(
            RunView(
                id=run.id,
                kind=run.kind,
                status=run.status,
                stuck=running and (not writer or now - started > STUCK_AFTER),
                window_from=run.window_from,
                window_to=run.window_to,
                sources=tuple(run.sources or ()),
                started_at=started,
                finished_at=finished,
                duration_seconds=round((end - started).total_seconds(), 3) if end else None,
                counts=dict(run.counts or {}),
                error=run.error,
                validation_failures=failures,
                quarantined=quarantined,
            )
        )
    return views


def _failed_expectations(result: dict[str, Any]) -> tuple[str, ...]:
    """Names of the failed expectations in a stored GX result (best effort over its shape)."""
    names: list[str] = []
    for item in result.get("results", []) if isinstance(result, dict) else []:
        if isinstance(item, dict) and not item.get("success", True):
            config = item.get("expectation_config") or {}
            kind = config.get("type") or config.get("expectation_type") or "expectation"
            column = (config.get("kwargs") or {}).get("column")
            names.append(f"{kind}({column})" if column else str(kind))
    return tuple(names)


def _run_details(
    session: Session, run_ids: list[str], quarantine_limit: int
) -> dict[str, tuple[tuple[ValidationFailure, ...], tuple[QuarantineView, ...]]]:
    failures: dict[str, list[ValidationFailure]] = {r: [] for r in run_ids}
    for v in session.scalars(
        select(ValidationResult)
        .where(ValidationResult.run_id.in_(run_ids), ValidationResult.success.is_(False))
        .order_by(ValidationResult.id)
    ):
        failures[v.run_id].append(
            ValidationFailure(
                v.dataset,
                v.suite,
                v.rows_failed,
                v.rows_evaluated,
                v.held,
                _failed_expectations(v.result),
            )
        )
    quarantined: dict[str, list[QuarantineView]] = {r: [] for r in run_ids}
    for q in session.scalars(
        select(QuarantinedRow)
        .where(QuarantinedRow.run_id.in_(run_ids))
        .order_by(QuarantinedRow.id)
        .limit(quarantine_limit)
    ):
        quarantined[q.run_id or ""] = [
            *quarantined.get(q.run_id or "", []),
            QuarantineView(
                q.provider,
                q.dataset,
                q.row_key,
                q.booked_on,
                q.amount_minor,
                q.currency,
                tuple(str(r) for r in q.reasons or ()),
            ),
        ]
    return {r: (tuple(failures[r]), tuple(quarantined.get(r, []))) for r in run_ids}


def recent_runs(
    engine: Engine, acting: Actor | str, tenant_id: str, *, limit: int = 20
) -> list[RunView]:
    """The tenant's latest runs, newest first, with failed validations and quarantined rows."""
    now = utcnow()
    with tenant_session(engine, tenant_id) as session:
        require(session, acting, tenant_id, Permission.READ)
        runs = list(
            session.scalars(
                select(Run).order_by(Run.started_at.desc(), Run.id.desc()).limit(max(1, limit))
            )
        )
        details = _run_details(session, [r.id for r in runs], quarantine_limit=500)
    return _views(engine, tenant_id, runs, now, details)


@dataclass(frozen=True)
class RunRequest:
    """A person's request to re-run a tenant over a window, recorded before it starts."""

    tenant_id: str
    date_from: dt.date
    date_to: dt.date
    requested_by: str
    audit_seq: int


def request_run(
    engine: Engine, acting: Actor | str, tenant_id: str, date_from: dt.date, date_to: dt.date
) -> RunRequest:
    """Check WORK on the tenant and record the request in the audit log (one transaction)."""
    from recon import audit
    from recon.errors import RuleViolationError

    if date_to < date_from:
        raise RuleViolationError(f"the window ends ({date_to}) before it starts ({date_from})")
    with tenant_session(engine, tenant_id) as session:
        actor = require(session, acting, tenant_id, Permission.WORK)
        entry = audit.append(
            session,
            actor=actor.email,
            action="run.requested",
            entity="tenant",
            entity_id=tenant_id,
            details={"date_from": date_from.isoformat(), "date_to": date_to.isoformat()},
        )
        return RunRequest(tenant_id, date_from, date_to, actor.email, entry.seq)


def latest_booking(engine: Engine, acting: Actor | str, tenant_id: str) -> dt.date | None:
    """The last day the tenant has a booked transaction (where a default period should end)."""
    with tenant_session(engine, tenant_id) as session:
        require(session, acting, tenant_id, Permission.READ)
        last = session.scalar(select(func.max(Transaction.booked_on)))
    return last if isinstance(last, dt.date) else None


def data_version(engine: Engine, acting: Actor | str, tenant_id: str) -> int:
    """The head of the tenant's audit chain: every run and every decision appends to it, so a
    cached read keyed by this number is stale exactly when it changes."""
    from recon.db.models import AuditEntry

    with tenant_session(engine, tenant_id) as session:
        require(session, acting, tenant_id, Permission.READ)
        head = session.scalar(select(func.max(AuditEntry.seq)))
    return int(head or 0)
