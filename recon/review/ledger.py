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
  write-back ledger (`applied_payments`) recorded or found for it;
* an allocation by a person keeps the engine's rules (`check_allocation`): incoming booked money,
  positive amounts, one currency, no cancelled invoice, within both amounts above.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from recon.canonical import split_transaction_ref, transaction_ref
from recon.db.models import (
    Allocation,
    AppliedPayment,
    Invoice,
    Match,
    RecordedPayment,
    Transaction,
)
from recon.errors import NotFoundError, RuleViolationError
from recon.locks import transaction_lock
from recon.money import format_amount
from recon.writeback import confirms_recorded

SUGGESTION = "review"
CANCELLED = "Cancelled"
ENGINE = "engine"
"""Who the engine is in `created_by`; anyone else is a person."""


def unreversed(model: type[Allocation] | type[Match]) -> ColumnElement[bool]:
    """SQL condition of a live row of an append-only table undone by reversal rows
    (`reverses_id`): not a reversal, and not reversed by one."""
    reversal = aliased(model)
    return and_(model.reverses_id.is_(None), ~exists().where(reversal.reverses_id == model.id))


def live_clause() -> ColumnElement[bool]:
    """SQL condition of a live allocation: not a reversal, and not reversed by one."""
    return unreversed(Allocation)


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
    transaction_lock(session, f"books:{tenant_id}")


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


# -- the rules of the books ------------------------------------------------------------------------


def ref_of(payment: Transaction) -> str:
    """The payment's transaction ref (`source:account:id`)."""
    return transaction_ref(payment.source, payment.account_ref, payment.source_id)


def find_payment(session: Session, tenant_id: str, ref: str) -> Transaction:
    """The payment named by its full ref (`source:account:id`) or, when unique, its own id."""
    parts = ref.strip().split(":", 2)
    query = select(Transaction)
    if len(parts) == 3:
        query = query.where(Transaction.source == parts[0], Transaction.account_ref == parts[1],
                            Transaction.source_id == parts[2])  # fmt: skip
    else:
        query = query.where(Transaction.source_id == ref.strip())
    found = list(session.scalars(query.limit(3)))
    if not found:
        raise NotFoundError(f"there is no payment {ref!r} in tenant {tenant_id!r}")
    if len(found) > 1:
        names = ", ".join(ref_of(t) for t in found)
        raise RuleViolationError(f"{ref!r} names several payments ({names}); pass the full ref")
    return found[0]


def _invoice(session: Session, tenant_id: str, invoice_id: str) -> Invoice:
    found = session.scalar(select(Invoice).where(Invoice.invoice_id == invoice_id))
    if found is None:
        raise NotFoundError(f"there is no invoice {invoice_id!r} in tenant {tenant_id!r}")
    return found


def money_text(minor: int, currency: str) -> str:
    """An amount as a person reads it: `12.50 EUR`."""
    return f"{format_amount(minor, currency)} {currency}"


# -- the rules -------------------------------------------------------------------------------------


def _check_payment(payment: Transaction) -> None:
    ref = ref_of(payment)
    if payment.amount_minor <= 0:
        raise RuleViolationError(
            f"payment {ref} is outgoing money "
            f"({money_text(payment.amount_minor, payment.currency)}); only incoming payments are "
            "allocated to invoices"
        )
    if payment.status != "booked":
        raise RuleViolationError(
            f"payment {ref} is {payment.status} at its provider; allocate it once it is booked"
        )


def check_allocation(
    session: Session, tenant_id: str, payment: Transaction, parts: Sequence[tuple[str, int]]
) -> dict[str, Invoice]:
    """Refuse `parts` (invoice, minor amount) that break a rule; the invoices by id."""
    _check_payment(payment)
    ref, currency = ref_of(payment), payment.currency
    if not parts:
        raise RuleViolationError("name at least one invoice and amount to allocate")
    seen: set[str] = set()
    invoices: dict[str, Invoice] = {}
    for invoice_id, minor in parts:
        if invoice_id in seen:
            raise RuleViolationError(f"invoice {invoice_id} is named twice; give it one amount")
        seen.add(invoice_id)
        if minor <= 0:
            raise RuleViolationError(
                f"the amount for invoice {invoice_id} must be positive, not "
                f"{money_text(minor, currency)}"
            )
        invoice = invoices[invoice_id] = _invoice(session, tenant_id, invoice_id)
        if invoice.status == CANCELLED:
            raise RuleViolationError(
                f"invoice {invoice_id} is cancelled in WHMCS; it takes no payment"
            )
        if invoice.currency != currency:
            raise RuleViolationError(
                f"invoice {invoice_id} is billed in {invoice.currency} but payment {ref} is in "
                f"{currency}; a payment is allocated only to invoices in its own currency"
            )
    total = sum(minor for _, minor in parts)
    left = unallocated(session, payment)
    if total > left:
        raise RuleViolationError(
            f"the parts add up to {money_text(total, currency)} but payment {ref} has only "
            f"{money_text(left, currency)} unallocated "
            f"(of {money_text(payment.amount_minor, currency)})"
        )
    balances = open_balances(session, list(invoices.values()))
    for invoice_id, minor in parts:
        if minor > balances[invoice_id]:
            raise RuleViolationError(
                f"invoice {invoice_id} has {money_text(balances[invoice_id], currency)} open but "
                f"{money_text(minor, currency)} were asked for it"
            )
    return invoices
