"""The books as people and the engine both read them: live allocations, what a payment has left
to place, and what an invoice still has open.

One definition each, in the core, so the engine's reconcile (`tasks.reconcile.build_frames`) and
the people's services (`recon.review.allocations`) agree:

* an allocation is *live* when it is not a reversal and no reversal points at it;
* a *suggestion* (decision `review`) holds no money: it neither uses a payment nor an invoice;
* a payment's *unallocated* amount is its amount minus its live allocations that hold money;
* an invoice's *open balance* is what WHMCS says is due (`invoices.balance_minor`) minus the live
  allocations that hold money on it and that WHMCS does not reflect yet. A `recorded_*`
  allocation confirms a payment WHMCS already has (in its balance); any other is reflected once
  WHMCS records it: under one of the payment's ids (`transid`), or under the WHMCS payment the
  write-back ledger (`applied_payments`) recorded or found for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, func, select, text
from sqlalchemy.orm import Session, aliased

from recon.canonical import split_transaction_ref, transaction_ref
from recon.db.models import Allocation, AppliedPayment, Invoice, RecordedPayment, Transaction
from recon.writeback import confirms_recorded

SUGGESTION = "review"
ENGINE = "engine"
"""Who the engine is in `created_by`; anyone else is a person."""


def live_clause() -> ColumnElement[bool]:
    """SQL condition of a live allocation: not a reversal, and not reversed by one."""
    reversal = aliased(Allocation)
    return and_(
        Allocation.reverses_id.is_(None),
        ~exists().where(reversal.reverses_id == Allocation.id),
    )


def live_allocations(session: Session, *criteria: ColumnElement[bool]) -> list[Allocation]:
    """The allocations in force (optionally narrowed by `criteria`), in the order written."""
    return list(
        session.scalars(select(Allocation).where(live_clause(), *criteria).order_by(Allocation.id))
    )


def holds_money(allocation: Allocation) -> bool:
    """Whether a live allocation uses its payment's money (every one but a suggestion)."""
    return allocation.decision != SUGGESTION


def lock_books(session: Session, tenant_id: str) -> None:
    """Serialise the writers of a tenant's allocations (people and engine runs) until the
    transaction ends, so two of them never place the same money. Call it first in the
    transaction: on SQLite a transaction that has read may not take the write lock later."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"books:{tenant_id}"},
        )
    else:
        # A write that touches no row takes SQLite's write lock for the whole transaction.
        session.execute(text("DELETE FROM allocations WHERE 1 = 0"))


def own_id(ref: str) -> str:
    """The provider's own id of the transaction `ref` (what write-back sends as `transid`,
    except for a Stripe balance transaction, recorded under its charge)."""
    return split_transaction_ref(ref)[2]


def whmcs_ids(session: Session, refs: Collection[str] | None = None) -> dict[str, tuple[str, ...]]:
    """Transaction ref -> the other ids WHMCS may record its payment under (`transid`): a Stripe
    balance transaction's charge and payment intent (all refs, or only `refs`)."""
    statement = select(
        Transaction.source,
        Transaction.account_ref,
        Transaction.source_id,
        Transaction.charge_id,
        Transaction.payment_intent,
    ).where(Transaction.charge_id.is_not(None))
    if refs is not None:
        ids = sorted({split_transaction_ref(r)[2] for r in refs})
        if not ids:
            return {}
        statement = statement.where(Transaction.source_id.in_(ids))
    return {
        transaction_ref(source, account, source_id): tuple(i for i in (charge, intent) if i)
        for source, account, source_id, charge, intent in session.execute(statement)
    }


@dataclass(frozen=True)
class WhmcsView:
    """What WHMCS is known to hold: its recorded payments and what write-back put there."""

    recorded: frozenset[tuple[str, str]]
    """(invoice, transid) of WHMCS's recorded payments."""
    recorded_ids: frozenset[str]
    """WHMCS payment ids (`whmcs_txn_id`) of its recorded payments."""
    written: dict[tuple[str, str], str]
    """(invoice, transid) -> the WHMCS payment id write-back recorded or found for it."""

    def reflects(self, allocation: Allocation, aliases: dict[str, tuple[str, ...]]) -> bool:
        """Whether WHMCS's balance already counts `allocation`'s money."""
        if confirms_recorded(allocation.rule):
            return True
        own = split_transaction_ref(allocation.transaction_ref)[2]
        for transid in (own, *aliases.get(allocation.transaction_ref, ())):
            pair = (allocation.invoice_id, transid)
            if pair in self.recorded or self.written.get(pair) in self.recorded_ids:
                return True
        return False


def whmcs_view(session: Session, invoice_ids: Collection[str] | None = None) -> WhmcsView:
    """WHMCS's recorded payments and the write-back ledger (all invoices, or `invoice_ids`)."""
    recorded_q = select(RecordedPayment.invoice_id, RecordedPayment.transid,
                        RecordedPayment.whmcs_txn_id)  # fmt: skip
    applied_q = select(AppliedPayment).where(AppliedPayment.state == "applied")
    if invoice_ids is not None:
        wanted = sorted(set(invoice_ids))
        recorded_q = recorded_q.where(RecordedPayment.invoice_id.in_(wanted))
        applied_q = applied_q.where(AppliedPayment.invoice_id.in_(wanted))
    pairs, ids = set(), set()
    for invoice, transid, whmcs_txn_id in session.execute(recorded_q):
        ids.add(whmcs_txn_id)
        if invoice and transid:
            pairs.add((invoice, transid))
    written = {
        (row.invoice_id, row.transid): str(row.response["whmcs_txn_id"])
        for row in session.scalars(applied_q)
        if row.response and row.response.get("whmcs_txn_id") is not None
    }
    return WhmcsView(frozenset(pairs), frozenset(ids), written)


def held_by_invoice(
    allocations: Iterable[Allocation],
    view: WhmcsView,
    aliases: dict[str, tuple[str, ...]],
    *,
    skip_refs: Collection[str] = (),
) -> dict[str, int]:
    """Invoice -> money live `allocations` hold on it beyond what WHMCS's balance shows
    (allocations of `skip_refs`, which the engine is about to decide again, left out)."""
    held: dict[str, int] = defaultdict(int)
    for allocation in allocations:
        if allocation.transaction_ref in skip_refs or not holds_money(allocation):
            continue
        if not view.reflects(allocation, aliases):
            held[allocation.invoice_id] += allocation.amount_minor
    return dict(held)


def open_balances(session: Session, invoices: Collection[Invoice]) -> dict[str, int]:
    """Invoice id -> its open balance (WHMCS's balance minus money held on it), never below 0."""
    ids = sorted({i.invoice_id for i in invoices})
    if not ids:
        return {}
    allocations = live_allocations(session, Allocation.invoice_id.in_(ids))
    aliases = whmcs_ids(session, {a.transaction_ref for a in allocations})
    held = held_by_invoice(allocations, whmcs_view(session, ids), aliases)
    return {i.invoice_id: max(i.balance_minor - held.get(i.invoice_id, 0), 0) for i in invoices}


def allocated_of_payment(session: Session, ref: str) -> int:
    """Money of the payment `ref` that its live allocations (suggestions aside) place."""
    total = session.scalar(
        select(func.coalesce(func.sum(Allocation.amount_minor), 0)).where(
            live_clause(), Allocation.transaction_ref == ref, Allocation.decision != SUGGESTION
        )
    )
    return int(total or 0)


def unallocated(session: Session, payment: Transaction) -> int:
    """What of the payment is left to place: its amount minus its live allocations."""
    ref = transaction_ref(payment.source, payment.account_ref, payment.source_id)
    return payment.amount_minor - allocated_of_payment(session, ref)


def payment_allocations(session: Session, ref: str) -> list[Allocation]:
    """The live allocations of one payment (suggestions included), in the order written."""
    return live_allocations(session, Allocation.transaction_ref == ref)


def invoice_allocations(session: Session, invoice_id: str) -> list[Allocation]:
    """The live allocations on one invoice (suggestions included), in the order written."""
    return live_allocations(session, Allocation.invoice_id == invoice_id)


def reversed_by_people(
    session: Session, refs: Collection[str] | None = None
) -> set[tuple[str, str]]:
    """(payment, invoice) pairs of which a person reversed an allocation: the engine never
    proposes them again."""
    statement = select(Allocation.transaction_ref, Allocation.invoice_id).where(
        Allocation.reverses_id.is_not(None), Allocation.created_by != ENGINE
    )
    if refs is not None:
        wanted = sorted(set(refs))
        if not wanted:
            return set()
        statement = statement.where(Allocation.transaction_ref.in_(wanted))
    return {(ref, invoice) for ref, invoice in session.execute(statement)}
