"""One exception: everything about it, and the work people do on it.

`exception_detail` (READ) gathers the payment with its landed provider record, the engine's
candidates and runners-up, the payer's open invoices, comments and audit history. The writes
(`assign`, `unassign`, `comment`, `resolve`, `reopen`; WORK) each run in one transaction: the
access check, a version check against what the caller saw (a stale write is a ConflictError
naming who changed it, what and when), the change with `updated_by`, and the audit entry naming
the user with the state before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from recon import audit
from recon.db.base import utcnow
from recon.db.models import (
    Allocation,
    AuditEntry,
    ExceptionComment,
    Invoice,
    ReconException,
    TenantGrant,
    User,
)
from recon.db.tenancy import tenant_session
from recon.errors import ConflictError, NotFoundError, RuleViolationError
from recon.locks import sqlite_write_lock
from recon.review.access import ROLE_PERMISSIONS, Actor, Permission, Role, require
from recon.review.ledger import live_clause
from recon.review.queue import payments_by_ref, raw_record_of, view_of
from recon.review.views import (
    CandidateView,
    CommentView,
    ExceptionDetail,
    ExceptionStatus,
    ExceptionView,
    HistoryEntry,
    InvoiceView,
    PaymentView,
    ResolutionKind,
    RunnerUpView,
    as_utc,
    decimal_text,
)

OPEN_INVOICE_LIMIT = 50
HISTORY_LIMIT = 200
_OPEN_STATUSES = ("Unpaid", "Payment Pending", "Collections")


# -- reading ---------------------------------------------------------------------------------------


def _load(session: Session, tenant_id: str, exception_id: int, *, lock: bool = False) -> Any:
    query = select(ReconException).where(ReconException.id == exception_id)
    if lock:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise NotFoundError(f"there is no exception {exception_id} in tenant {tenant_id!r}")
    return row


def current_version(engine: Engine, acting: Actor | str, tenant_id: str, exception_id: int) -> int:
    """The exception's version now (READ), for a caller that did not keep the one it saw."""
    with tenant_session(engine, tenant_id) as session:
        require(session, acting, tenant_id, Permission.READ)
        return int(_load(session, tenant_id, exception_id).version)


def exception_detail(
    engine: Engine, acting: Actor | str, tenant_id: str, exception_id: int
) -> ExceptionDetail:
    """The exception with its payment, candidates, runners-up, the payer's open invoices,
    comments and history (READ)."""
    now = utcnow()
    with tenant_session(engine, tenant_id) as session:
        require(session, acting, tenant_id, Permission.READ)
        row = _load(session, tenant_id, exception_id)
        ref = row.transaction_ref
        txn = payments_by_ref(session, [ref]).get(ref or "")
        view = view_of(row, txn, now)
        payment = _payment(session, txn, ref) if txn is not None and ref else None
        candidates = _candidates(session, ref)
        runners = _runners_up(session, row)
        invoice_ids = {c.invoice_id for c in candidates} | {
            r.invoice_id for r in runners if r.invoice_id
        }
        if row.invoice_id:
            invoice_ids.add(row.invoice_id)
        invoices, how = _open_invoices(session, invoice_ids, view.payer)
        return ExceptionDetail(
            exception=view,
            payment=payment,
            candidates=candidates,
            runners_up=runners,
            open_invoices=invoices,
            payer_match=how,
            comments=_comments(session, row.id),
            history=_history(session, row, ref),
        )


def _payment(session: Session, txn: Any, ref: str) -> PaymentView:
    return PaymentView(
        transaction_ref=ref,
        source=txn.source,
        account_ref=txn.account_ref,
        source_id=txn.source_id,
        kind=txn.kind,
        status=txn.status,
        booked_on=txn.booked_on,
        amount_minor=txn.amount_minor,
        fee_minor=txn.fee_minor,
        currency=txn.currency,
        amount=decimal_text(txn.amount_minor, txn.currency),
        counterparty=txn.counterparty,
        reference=txn.reference,
        payout_id=txn.payout_id,
        charge_id=txn.charge_id,
        raw_payload_id=txn.raw_payload_id,
        raw_record=raw_record_of(session, txn.raw_payload_id, txn.source_id),
    )


def _candidates(session: Session, ref: str | None) -> tuple[CandidateView, ...]:
    if not ref:
        return ()
    rows = session.scalars(
        select(Allocation)
        .where(Allocation.transaction_ref == ref, live_clause())
        .order_by(Allocation.confidence.desc(), Allocation.id)
    )
    return tuple(
        CandidateView(
            allocation_id=a.id,
            invoice_id=a.invoice_id,
            amount_minor=a.amount_minor,
            currency=a.currency,
            amount=decimal_text(a.amount_minor, a.currency),
            rule=a.rule,
            confidence=a.confidence,
            decision=a.decision,
            origin=a.origin,
            created_by=a.created_by,
            created_at=as_utc(a.created_at),
        )
        for a in rows
    )


def _runners_up(session: Session, row: ReconException) -> tuple[RunnerUpView, ...]:
    """The other candidates the engine recorded for the payment: its `ambiguous` rows, with
    the rule and confidence the engine stored on them (none on a row that names no candidate,
    such as a payment an earlier one crowded out)."""
    if not row.transaction_ref:
        return ()
    others = session.scalars(
        select(ReconException)
        .where(
            ReconException.transaction_ref == row.transaction_ref,
            ReconException.kind == "ambiguous",
            ReconException.status == ExceptionStatus.OPEN.value,
        )
        .order_by(ReconException.id)
    )
    return tuple(
        RunnerUpView(
            exception_id=other.id,
            invoice_id=other.invoice_id,
            confidence=other.confidence,
            rule=other.rule,
            detail=other.detail or "",
        )
        for other in others
    )


def _open_invoices(
    session: Session, invoice_ids: set[str], payer: str | None
) -> tuple[tuple[InvoiceView, ...], str]:
    """Open invoices of the candidates' clients, else of clients named like the payer."""
    is_open = and_(Invoice.balance_minor > 0, Invoice.status.in_(_OPEN_STATUSES))
    how, clients = "none", []
    if invoice_ids:
        clients = list(
            session.scalars(
                select(Invoice.client_id).where(Invoice.invoice_id.in_(sorted(invoice_ids)))
            )
        )
        how = "client" if clients else how
    where: ColumnElement[bool]
    if clients:
        where = Invoice.client_id.in_(sorted(set(clients)))
    elif payer and payer.strip():
        name = payer.strip().lower()
        where = or_(
            func.lower(Invoice.client_name) == name, func.lower(Invoice.company_name) == name
        )
        how = "name"
    else:
        return (), "none"
    rows = session.scalars(
        select(Invoice)
        .where(where, is_open)
        .order_by(Invoice.issued_on, Invoice.invoice_id)
        .limit(OPEN_INVOICE_LIMIT)
    )
    views = tuple(
        InvoiceView(
            invoice_id=i.invoice_id,
            invoice_num=i.invoice_num,
            client_id=i.client_id,
            client_name=i.client_name,
            company_name=i.company_name,
            issued_on=i.issued_on,
            due_on=i.due_on,
            total=decimal_text(i.total_minor, i.currency),
            balance_minor=i.balance_minor,
            balance=decimal_text(i.balance_minor, i.currency),
            currency=i.currency,
            status=i.status,
        )
        for i in rows
    )
    return views, (how if views else "none")


def _comments(session: Session, exception_id: int) -> tuple[CommentView, ...]:
    rows = session.scalars(
        select(ExceptionComment)
        .where(ExceptionComment.exception_id == exception_id)
        .order_by(ExceptionComment.created_at, ExceptionComment.id)
    )
    return tuple(CommentView(c.id, c.author, c.body, as_utc(c.created_at)) for c in rows)


def _history(session: Session, row: ReconException, ref: str | None) -> tuple[HistoryEntry, ...]:
    """Audit entries of the exception (by key or id) and of its payment's allocations."""
    about = [
        and_(
            AuditEntry.entity == "exception",
            AuditEntry.entity_id.in_([row.exception_key, str(row.id)]),
        )
    ]
    if ref:
        allocations = session.execute(
            select(Allocation.id, Allocation.allocation_key).where(
                Allocation.transaction_ref == ref
            )
        ).all()
        names = sorted({k for _, k in allocations} | {str(i) for i, _ in allocations})
        if names:
            about.append(and_(AuditEntry.entity == "allocation", AuditEntry.entity_id.in_(names)))
    entries = session.scalars(
        select(AuditEntry).where(or_(*about)).order_by(AuditEntry.seq.desc()).limit(HISTORY_LIMIT)
    )
    return tuple(
        HistoryEntry(
            e.seq, as_utc(e.occurred_at), e.actor, e.action, e.entity, e.entity_id, e.details
        )
        for e in reversed(list(entries))
    )


# -- work ------------------------------------------------------------------------------------------

_STATE_FIELDS = ("status", "assignee", "resolution_kind", "resolution", "resolved_by", "version")


def _state(row: ReconException) -> dict[str, Any]:
    return {f: getattr(row, f) for f in _STATE_FIELDS}


def _conflict(row: ReconException, expected: int) -> ConflictError:
    who = row.updated_by or "the engine"
    if who == "engine":
        who = "the engine"
    at = as_utc(row.updated_at)
    when = at.strftime("%Y-%m-%d %H:%M UTC") if at else "an unknown time"
    return ConflictError(
        f"exception {row.id} was {_last_change(row)} by {who} at {when} (version {row.version}, "
        f"you saw {expected}); reload and try again"
    )


def _last_change(row: ReconException) -> str:
    if row.status == ExceptionStatus.RESOLVED.value:
        return "resolved"
    if row.status == ExceptionStatus.CLOSED.value:
        return "closed"
    if row.updated_by and row.updated_by != "engine":
        return f"assigned to {row.assignee}" if row.assignee else "changed"
    return "changed"


def _take_write_lock(session: Session) -> None:
    """On SQLite, take the write lock before the first read: a transaction that has read may not
    write once another has committed (WAL), so two writers queue here instead of one failing.
    PostgreSQL locks the row (`FOR UPDATE`) when it is read."""
    sqlite_write_lock(session)


def _write(
    engine: Engine,
    acting: Actor | str,
    tenant_id: str,
    exception_id: int,
    expected_version: int,
    action: str,
    change: Callable[[Session, ReconException, Actor], dict[str, Any]],
) -> ExceptionView:
    """One write: access, version check, `change` (which returns audit details), audit."""
    try:
        with tenant_session(engine, tenant_id) as session:
            _take_write_lock(session)
            actor = require(session, acting, tenant_id, Permission.WORK)
            row = _load(session, tenant_id, exception_id, lock=True)
            if row.version != expected_version:
                raise _conflict(row, expected_version)
            before = _state(row)
            extra = change(session, row, actor)
            row.updated_by = actor.email
            session.flush()
            audit.append(
                session,
                actor=actor.email,
                action=action,
                entity="exception",
                entity_id=row.exception_key,
                details={
                    "exception_id": row.id,
                    "before": before,
                    "after": _state(row),
                    **extra,
                },
            )
            return view_of(row, payments_by_ref(session, [row.transaction_ref]).get(
                row.transaction_ref or ""), utcnow())  # fmt: skip
    except StaleDataError:  # someone committed between our read and our write (SQLite)
        with tenant_session(engine, tenant_id) as session:
            raise _conflict(_load(session, tenant_id, exception_id), expected_version) from None


def _require_open(row: ReconException, doing: str) -> None:
    if row.status == ExceptionStatus.RESOLVED.value:
        raise RuleViolationError(
            f"exception {row.id} is already resolved ({row.resolution_kind}) by "
            f"{row.resolved_by}; reopen it first to {doing} it"
        )
    if row.status == ExceptionStatus.CLOSED.value:
        raise RuleViolationError(
            f"exception {row.id} was closed by the engine ({row.closed_reason}); there is "
            f"nothing to {doing}"
        )


def _assignee(session: Session, tenant_id: str, email: str) -> str:
    wanted = email.strip().lower()
    user = session.scalar(select(User).where(func.lower(User.email) == wanted))
    if user is None:
        raise NotFoundError(f"there is no user {wanted!r} to assign to")
    if not user.active:
        raise RuleViolationError(f"user {wanted!r} is disabled and cannot be assigned work")
    if Permission.WORK not in ROLE_PERMISSIONS[Role(user.role)]:
        raise RuleViolationError(f"{wanted} is an {user.role} and cannot work exceptions")
    granted = session.scalar(select(TenantGrant.id).where(TenantGrant.user_id == user.id))
    if granted is None:
        raise RuleViolationError(f"{wanted} has no access to tenant {tenant_id!r}")
    return str(user.email)


def assign(
    engine: Engine,
    acting: Actor | str,
    tenant_id: str,
    exception_id: int,
    to_email: str,
    expected_version: int,
) -> ExceptionView:
    """Give an open exception to an active user who may work on the tenant (WORK)."""

    def change(session: Session, row: ReconException, _actor: Actor) -> dict[str, Any]:
        _require_open(row, "assign")
        row.assignee = _assignee(session, tenant_id, to_email)
        return {"assignee": row.assignee}

    return _write(
        engine, acting, tenant_id, exception_id, expected_version, "exception.assigned", change
    )


def unassign(
    engine: Engine, acting: Actor | str, tenant_id: str, exception_id: int, expected_version: int
) -> ExceptionView:
    """Take an exception off whoever holds it (WORK)."""

    def change(_session: Session, row: ReconException, _actor: Actor) -> dict[str, Any]:
        if row.assignee is None:
            raise RuleViolationError(f"exception {row.id} is not assigned to anyone")
        previous, row.assignee = row.assignee, None
        return {"previous_assignee": previous}

    return _write(
        engine, acting, tenant_id, exception_id, expected_version, "exception.unassigned", change
    )


def resolve(
    engine: Engine,
    acting: Actor | str,
    tenant_id: str,
    exception_id: int,
    resolution: ResolutionKind | str,
    note: str | None,
    expected_version: int,
) -> ExceptionView:
    """Resolve an open exception with a resolution kind and a note (WORK)."""
    try:
        kind = ResolutionKind(resolution)
    except ValueError:
        choices = "|".join(k.value for k in ResolutionKind)
        raise RuleViolationError(
            f"{resolution!r} is not a resolution; use one of {choices}"
        ) from None

    def change(_session: Session, row: ReconException, actor: Actor) -> dict[str, Any]:
        _require_open(row, "resolve")
        row.status = ExceptionStatus.RESOLVED.value
        row.resolution_kind = kind.value
        row.resolution = (note or "").strip() or None
        row.resolved_by = actor.email
        row.resolved_at = utcnow()
        return {"resolution": kind.value, "note": row.resolution}

    return _write(
        engine, acting, tenant_id, exception_id, expected_version, "exception.resolved", change
    )


def reopen(
    engine: Engine,
    acting: Actor | str,
    tenant_id: str,
    exception_id: int,
    expected_version: int,
    note: str | None = None,
) -> ExceptionView:
    """Open a resolved exception again; its resolution stays in the audit log (WORK)."""

    def change(_session: Session, row: ReconException, _actor: Actor) -> dict[str, Any]:
        if row.status == ExceptionStatus.OPEN.value:
            raise RuleViolationError(f"exception {row.id} is open already; nothing to reopen")
        if row.status != ExceptionStatus.RESOLVED.value:
            raise RuleViolationError(
                f"exception {row.id} was closed by the engine ({row.closed_reason}), not "
                "resolved by a person; a later run reopens it if it applies again"
            )
        row.status = ExceptionStatus.OPEN.value
        row.resolution_kind = row.resolution = row.resolved_by = None
        row.resolved_at = None
        return {"note": (note or "").strip() or None}

    return _write(
        engine, acting, tenant_id, exception_id, expected_version, "exception.reopened", change
    )


def comment(
    engine: Engine, acting: Actor | str, tenant_id: str, exception_id: int, text: str
) -> CommentView:
    """Add a comment (WORK); it changes nothing else on the exception, so it needs no version."""
    body = text.strip()
    if not body:
        raise RuleViolationError("a comment needs some text")
    with tenant_session(engine, tenant_id) as session:
        _take_write_lock(session)
        actor = require(session, acting, tenant_id, Permission.WORK)
        row = _load(session, tenant_id, exception_id)
        added = ExceptionComment(
            tenant_id=tenant_id, exception_id=row.id, author=actor.email, body=body
        )
        session.add(added)
        session.flush()
        audit.append(
            session,
            actor=actor.email,
            action="exception.commented",
            entity="exception",
            entity_id=row.exception_key,
            details={"exception_id": row.id, "comment_id": added.id, "text": body},
        )
        return CommentView(added.id, added.author, added.body, as_utc(added.created_at))
