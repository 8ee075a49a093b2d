"""Matching by hand: allocate a payment to invoices, reverse an allocation, accept suggestions.

Every call is one transaction: the books lock (`ledger.lock_books`, so a person and an engine
run never place the same money twice), the access check (WORK), the engine's rules checked
against the books as they are now, the rows, and an audit entry per row naming the person.
Allocations are append-only: undo is a reversal row (`reverses_id`, negated amount).

The rules: incoming, booked money only; positive amounts; the payment's currency on every
invoice; never more than the payment's unallocated amount nor an invoice's open balance
(`recon.review.ledger`); no cancelled invoice.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.exc import StaleDataError

from recon import audit
from recon.db.base import utcnow
from recon.db.models import Allocation, AppliedPayment, ReconException
from recon.db.tenancy import tenant_session
from recon.errors import ConflictError, NotFoundError, RuleViolationError
from recon.money import MoneyError, format_amount, to_minor
from recon.review import ledger
from recon.review.access import Actor, Permission, require
from recon.review.queue import fill_search_text
from recon.review.views import ExceptionStatus, ResolutionKind

MANUAL = "manual"
REVERSED_AFTER_WRITEBACK = "reversed_after_writeback"
# Exceptions a new allocation does not settle: they ask for work in WHMCS or on the write-back.
NOT_SETTLED_BY_ALLOCATING = frozenset({REVERSED_AFTER_WRITEBACK, "apply_failed"})

Amount = int | Decimal
"""An int is minor units; a Decimal is major units of the payment's currency ("12.50")."""


@dataclass(frozen=True)
class AllocationView:
    """One allocation row as people see it."""

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
    note: str | None
    reverses_id: int | None

    @property
    def amount(self) -> str:
        """The amount as a decimal string in major units."""
        return format_amount(self.amount_minor, self.currency)

    @classmethod
    def of(cls, row: Allocation) -> AllocationView:
        """The view of a stored row."""
        return cls(row.id, row.transaction_ref, row.invoice_id, row.amount_minor, row.currency,
                   row.rule, row.confidence, row.decision, row.origin, row.created_by, row.note,
                   row.reverses_id)  # fmt: skip


@dataclass(frozen=True)
class AllocationResult:
    """What `allocate` wrote: the new rows, what is left of the payment, what it settled."""

    tenant_id: str
    transaction_ref: str
    currency: str
    allocations: tuple[AllocationView, ...]
    unallocated_minor: int
    resolved_exception_ids: tuple[int, ...]
    superseded_suggestion_ids: tuple[int, ...]


@dataclass(frozen=True)
class UnallocationResult:
    """What `unallocate` wrote: the reversal, and the exception opened when WHMCS has it."""

    tenant_id: str
    reversed_id: int
    reversal: AllocationView
    writeback_exception_id: int | None


@dataclass(frozen=True)
class Accepted:
    """A suggestion a person accepted and the manual allocation that replaced it."""

    suggestion_id: int
    allocation: AllocationView


@dataclass(frozen=True)
class Refusal:
    """A suggestion not accepted, with the rule it would break."""

    allocation_id: int
    reason: str


@dataclass(frozen=True)
class AcceptResult:
    """What `accept_suggestions` did, one entry per suggestion asked for."""

    tenant_id: str
    accepted: tuple[Accepted, ...]
    refused: tuple[Refusal, ...]


def _minor(amount: Amount, currency: str, invoice_id: str) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
        raise RuleViolationError(f"the amount for invoice {invoice_id} must be a decimal amount")
    if isinstance(amount, int):
        return amount
    try:
        return to_minor(amount, currency)
    except MoneyError as exc:
        raise RuleViolationError(f"the amount for invoice {invoice_id}: {exc}") from None


# -- writing ---------------------------------------------------------------------------------------


def _key(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).hexdigest()


def _audit_allocation(session: Session, actor: Actor, action: str, row: Allocation,
                      **extra: Any) -> None:  # fmt: skip
    audit.append(
        session,
        actor=actor.email,
        action=action,
        entity="allocation",
        entity_id=row.allocation_key,
        details={
            "allocation_id": row.id,
            "transaction_ref": row.transaction_ref,
            "invoice_id": row.invoice_id,
            "amount_minor": row.amount_minor,
            "currency": row.currency,
            "rule": row.rule,
            "decision": row.decision,
            "reverses_id": row.reverses_id,
            "note": row.note,
            **extra,
        },
    )


def _add_manual(session: Session, tenant_id: str, actor: Actor, ref: str, invoice_id: str,
                minor: int, currency: str, *, rule: str = MANUAL, confidence: int = 100,
                note: str | None = None) -> Allocation:  # fmt: skip
    row = Allocation(
        tenant_id=tenant_id,
        allocation_key=_key(tenant_id, ref, invoice_id, MANUAL, uuid.uuid4().hex),
        transaction_ref=ref,
        invoice_id=invoice_id,
        amount_minor=minor,
        currency=currency,
        rule=rule,
        confidence=confidence,
        decision=MANUAL,
        origin=MANUAL,
        created_by=actor.email,
        note=note,
    )
    session.add(row)
    session.flush()
    _audit_allocation(session, actor, "allocation.manual", row)
    return row


def _is_reversed(session: Session, allocation_id: int) -> bool:
    reversal = aliased(Allocation)
    return bool(session.scalar(select(exists().where(reversal.reverses_id == allocation_id))))


def _reverse(session: Session, actor: Actor, original: Allocation, note: str | None,
             reason: str) -> Allocation:  # fmt: skip
    """Append the reversal of a live row (its key is the engine's, so only one can exist)."""
    reversal = Allocation(
        tenant_id=original.tenant_id,
        allocation_key=_key(original.tenant_id, "reversal", original.allocation_key),
        transaction_ref=original.transaction_ref,
        invoice_id=original.invoice_id,
        amount_minor=-original.amount_minor,
        currency=original.currency,
        rule=original.rule,
        confidence=original.confidence,
        decision=original.decision,
        origin=original.origin,
        reverses_id=original.id,
        created_by=actor.email,
        note=note,
    )
    session.add(reversal)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(
            f"allocation {original.id} was reversed by someone else just now; reload and check"
        ) from None
    _audit_allocation(session, actor, "allocation.reversed", reversal, reason=reason,
                      reverses_key=original.allocation_key)  # fmt: skip
    return reversal


def _settle_exceptions(session: Session, actor: Actor, ref: str, note: str | None) -> list[int]:
    """Resolve, as matched, the open exceptions about the payment `ref`."""
    rows = list(
        session.scalars(
            select(ReconException)
            .where(
                ReconException.status == ExceptionStatus.OPEN.value,
                ReconException.transaction_ref == ref,
                ReconException.kind.not_in(sorted(NOT_SETTLED_BY_ALLOCATING)),
            )
            .order_by(ReconException.id)
        )
    )
    for row in rows:
        before = {"status": row.status, "version": row.version}
        row.status = ExceptionStatus.RESOLVED.value
        row.resolution_kind = ResolutionKind.MATCHED.value
        row.resolution = note or "allocated by hand"
        row.resolved_by = row.updated_by = actor.email
        row.resolved_at = utcnow()
        try:
            session.flush()
        except StaleDataError:
            raise ConflictError(
                f"exception {row.id} about payment {ref} was changed by someone else just now; "
                "reload and try again"
            ) from None
        audit.append(session, actor=actor.email, action="exception.resolved", entity="exception",
                     entity_id=row.exception_key,
                     details={"exception_id": row.id, "before": before,
                              "after": {"status": row.status, "version": row.version},
                              "resolution": row.resolution_kind, "note": row.resolution,
                              "by": "allocation"})  # fmt: skip
    return [r.id for r in rows]


def _supersede_suggestions(session: Session, actor: Actor, ref: str) -> list[int]:
    """Reverse the engine's live suggestions for a payment a person has now allocated."""
    suggestions = [
        a for a in ledger.payment_allocations(session, ref) if a.decision == ledger.SUGGESTION
    ]
    for suggestion in suggestions:
        _reverse(session, actor, suggestion, None, "superseded by a person's allocation")
    return [s.id for s in suggestions]


# -- the services ----------------------------------------------------------------------------------


def allocate(
    engine: Engine,
    acting: Actor | str,
    tenant_id: str,
    transaction_ref: str,
    parts: Sequence[tuple[str, Amount]],
    note: str | None = None,
) -> AllocationResult:
    """Allocate one payment to one or several invoices (WORK).

    `parts` are (invoice id, amount); an int amount is minor units, a Decimal major units of
    the payment's currency. Refused with a RuleViolationError naming the numbers when a rule
    would break. Open exceptions about the payment are resolved as matched, and the engine's
    suggestions for it retired, in the same transaction.
    """
    note = (note or "").strip() or None
    with tenant_session(engine, tenant_id) as session:
        ledger.lock_books(session, tenant_id)
        actor = require(session, acting, tenant_id, Permission.WORK)
        payment = ledger.find_payment(session, tenant_id, transaction_ref)
        ref, currency = ledger.ref_of(payment), payment.currency
        minor_parts = [(str(i).strip(), _minor(a, currency, str(i))) for i, a in parts]
        ledger.check_allocation(session, tenant_id, payment, minor_parts)
        rows = [
            _add_manual(session, tenant_id, actor, ref, invoice_id, minor, currency, note=note)
            for invoice_id, minor in minor_parts
        ]
        superseded = _supersede_suggestions(session, actor, ref)
        resolved = _settle_exceptions(session, actor, ref, note)
        return AllocationResult(
            tenant_id=tenant_id,
            transaction_ref=ref,
            currency=currency,
            allocations=tuple(AllocationView.of(r) for r in rows),
            unallocated_minor=ledger.unallocated(session, payment),
            resolved_exception_ids=tuple(resolved),
            superseded_suggestion_ids=tuple(superseded),
        )


def _live_row(session: Session, tenant_id: str, allocation_id: int) -> Allocation:
    row = session.scalar(select(Allocation).where(Allocation.id == allocation_id))
    if row is None:
        raise NotFoundError(f"there is no allocation {allocation_id} in tenant {tenant_id!r}")
    if row.reverses_id is not None:
        raise RuleViolationError(
            f"allocation {allocation_id} is itself a reversal (of {row.reverses_id}); "
            "a reversal is never reversed: allocate again instead"
        )
    if _is_reversed(session, row.id):
        raise RuleViolationError(f"allocation {allocation_id} is already reversed")
    return row


def _written_back(session: Session, row: Allocation) -> AppliedPayment | None:
    aliases = ledger.whmcs_ids(session, [row.transaction_ref]).get(row.transaction_ref, ())
    ids = (ledger.own_id(row.transaction_ref), *aliases)
    return session.scalar(
        select(AppliedPayment).where(
            AppliedPayment.state == "applied",
            AppliedPayment.invoice_id == row.invoice_id,
            AppliedPayment.transid.in_(ids),
        )
    )


def _open_writeback_exception(session: Session, actor: Actor, row: Allocation,
                              applied: AppliedPayment, reversal: Allocation) -> int:  # fmt: skip
    exception = ReconException(
        tenant_id=row.tenant_id,
        exception_key=_key(row.tenant_id, REVERSED_AFTER_WRITEBACK, reversal.allocation_key),
        kind=REVERSED_AFTER_WRITEBACK,
        transaction_ref=row.transaction_ref,
        invoice_id=row.invoice_id,
        amount_minor=row.amount_minor,
        currency=row.currency,
        detail=(
            f"recorded in WHMCS, reversed here: remove payment {applied.transid} from invoice "
            f"{row.invoice_id} in WHMCS"
        ),
        updated_by=actor.email,
    )
    fill_search_text(session, [exception])
    session.add(exception)
    session.flush()
    audit.append(session, actor=actor.email, action="exception.opened", entity="exception",
                 entity_id=exception.exception_key,
                 details={"exception_id": exception.id, "kind": exception.kind,
                          "allocation_id": row.id, "reversal_id": reversal.id,
                          "transid": applied.transid, "invoice_id": row.invoice_id})  # fmt: skip
    return exception.id


def unallocate(
    engine: Engine,
    acting: Actor | str,
    tenant_id: str,
    allocation_id: int,
    note: str | None = None,
) -> UnallocationResult:
    """Reverse a live allocation (WORK): a reversal row, never an update or a delete.

    When WHMCS already records the payment (write-back applied it), the reversal is still
    written and a `reversed_after_writeback` exception asks a person to remove it in WHMCS.
    """
    note = (note or "").strip() or None
    with tenant_session(engine, tenant_id) as session:
        ledger.lock_books(session, tenant_id)
        actor = require(session, acting, tenant_id, Permission.WORK)
        row = _live_row(session, tenant_id, allocation_id)
        reversal = _reverse(session, actor, row, note, "reversed by a person")
        applied = _written_back(session, row)
        exception_id = (
            _open_writeback_exception(session, actor, row, applied, reversal) if applied else None
        )
        return UnallocationResult(tenant_id, row.id, AllocationView.of(reversal), exception_id)


def _suggestions(session: Session, allocation_ids: Sequence[int] | None,
                 min_confidence: int | None) -> list[Allocation]:  # fmt: skip
    query = select(Allocation).where(
        ledger.live_clause(),
        Allocation.decision == ledger.SUGGESTION,
        Allocation.origin == ledger.ENGINE,
    )
    if allocation_ids is not None:
        query = query.where(Allocation.id.in_(sorted(set(allocation_ids))))
    if min_confidence is not None:
        query = query.where(Allocation.confidence >= min_confidence)
    return list(session.scalars(query.order_by(Allocation.confidence.desc(), Allocation.id)))


def _accept_one(session: Session, tenant_id: str, actor: Actor, suggestion: Allocation,
                note: str | None) -> Allocation:  # fmt: skip
    payment = ledger.find_payment(session, tenant_id, suggestion.transaction_ref)
    if payment.currency != suggestion.currency:
        raise RuleViolationError(
            f"suggestion {suggestion.id} is in {suggestion.currency} but its payment is in "
            f"{payment.currency}"
        )
    ledger.check_allocation(
        session, tenant_id, payment, [(suggestion.invoice_id, suggestion.amount_minor)]
    )
    text = f"accepted suggestion {suggestion.id} ({suggestion.rule}, {suggestion.confidence})"
    _reverse(session, actor, suggestion, note, "accepted by a person")
    row = _add_manual(session, tenant_id, actor, suggestion.transaction_ref,
                      suggestion.invoice_id, suggestion.amount_minor, suggestion.currency,
                      rule=suggestion.rule, confidence=suggestion.confidence,
                      note=f"{text}: {note}" if note else text)  # fmt: skip
    _settle_exceptions(session, actor, suggestion.transaction_ref, note)
    return row


def accept_suggestions(
    engine: Engine,
    acting: Actor | str,
    tenant_id: str,
    *,
    allocation_ids: Sequence[int] | None = None,
    min_confidence: int | None = None,
    note: str | None = None,
) -> AcceptResult:
    """Accept the engine's suggestions (WORK): each is reversed and replaced by a manual
    allocation of the same invoice, amount and rule, the rules checked again now.

    Name them (`allocation_ids`) or take every live suggestion at or above `min_confidence`.
    One transaction per call; a suggestion that breaks a rule is refused with the reason,
    the others are accepted.
    """
    if (allocation_ids is None) == (min_confidence is None):
        raise RuleViolationError("name suggestions by id or give a minimum confidence, not both")
    note = (note or "").strip() or None
    accepted: list[Accepted] = []
    refused: list[Refusal] = []
    with tenant_session(engine, tenant_id) as session:
        ledger.lock_books(session, tenant_id)
        actor = require(session, acting, tenant_id, Permission.WORK)
        found = _suggestions(session, allocation_ids, min_confidence)
        for missing in sorted(set(allocation_ids or ()) - {s.id for s in found}):
            refused.append(Refusal(missing, f"allocation {missing} is not a live suggestion"))
        for suggestion in found:
            try:  # every rule is checked before anything is written
                row = _accept_one(session, tenant_id, actor, suggestion, note)
            except (RuleViolationError, NotFoundError) as exc:
                refused.append(Refusal(suggestion.id, str(exc)))
                continue
            accepted.append(Accepted(suggestion.id, AllocationView.of(row)))
    return AcceptResult(tenant_id, tuple(accepted), tuple(refused))
