"""WHMCS write-back: record automatic and people's allocations as payments in WHMCS, exactly once.

Only money WHMCS does not have is recorded: what may be written back is decided by
`recon.writeback.may_write_back`, the one definition the engine uses too (a `recorded_*`
allocation only confirms a payment WHMCS already records, so it is never sent).

For each payment to record, an `applied_payments` row is committed as `pending` BEFORE WHMCS is
called, and marked `applied` after. WHMCS's AddInvoicePayment is made idempotent by `transid`
(the payment's source id; for a Stripe balance transaction its charge's `ch_...`, as WHMCS's
Stripe module records it, and the ledger's key on every run): the client looks the transid up
on the invoice first, and the guard finds the payment under any of its ids (`ch_`, `pi_`,
`txn_`). So a crash
between the call and the commit leaves a pending row, and the next run's call finds the payment
in WHMCS and only marks it applied: never a second payment. Right before adding, the client
reads the invoice as WHMCS shows it now and `already_recorded` picks out a payment WHMCS holds
for this one without our transid (recorded by hand or by a gateway module): the row is then
`applied` as found in WHMCS, and nothing is added. A payment WHMCS refuses (a Cancelled
invoice) or that cannot be applied safely is `failed` with an `apply_failed` exception for a
person, and the others go on.

Apply runs under the tenant's writer lock (`recon.locks.tenant_lock`, taken by the run or by
`recon apply`), so a `pending` row is always a crash's leftover, never another process's work.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Protocol

from sqlalchemy import Engine, and_, select
from sqlalchemy.orm import Session

from connectors.whmcs import InvoiceLedger, PaymentGuard, RecordedPayment, WhmcsPaymentConflictError
from recon import audit
from recon.canonical import split_transaction_ref
from recon.db.base import utcnow
from recon.db.models import Allocation, AppliedPayment, ReconException, Transaction
from recon.db.tenancy import tenant_session
from recon.locks import tenant_lock
from recon.review.ledger import live_clause
from recon.writeback import WRITE_BACK_DECISIONS, confirms_recorded, may_write_back
from tasks.transids import transid_aliases

log = logging.getLogger("recon.apply")

GATEWAYS = {"stripe": "stripe", "gocardless": "gocardless"}


class PaymentWriter(Protocol):
    """What apply needs of WHMCS (the WHMCS client)."""

    def add_invoice_payment(
        self,
        invoice_id: int,
        transid: str,
        amount_minor: int,
        currency: str,
        fees_minor: int,
        gateway: str,
        paid_on: dt.date | dt.datetime,
        *,
        send_email: bool = False,
        guard: PaymentGuard | None = None,
    ) -> RecordedPayment: ...


@dataclass(frozen=True)
class PlannedPayment:
    """One payment to record in WHMCS."""

    allocation_id: int
    invoice_id: str
    transid: str
    """The id WHMCS records the payment under: a Stripe charge's `ch_...`, else the row's id."""
    amount_minor: int
    fees_minor: int
    currency: str
    gateway: str
    paid_on: dt.date
    aliases: tuple[str, ...] = ()
    """Every id WHMCS may hold this payment under (`transid` included): for a Stripe row its
    balance transaction, charge and payment intent."""


@dataclass
class ApplyReport:
    """What an apply run did (or, in a dry run, would do)."""

    planned: list[PlannedPayment] = field(default_factory=list)
    applied: int = 0
    already_in_whmcs: int = 0
    failed: list[tuple[PlannedPayment, str]] = field(default_factory=list)
    dry_run: bool = False


@dataclass
class Claims:
    """What of an invoice's WHMCS payments other payments already account for."""

    whmcs_ids: set[int] = field(default_factory=set)
    """WHMCS transactions an earlier apply recorded or found for a payment."""
    transids: set[str] = field(default_factory=set)
    """Source ids of the payments allocated to the invoice: a WHMCS row with one is theirs."""
    confirmed: list[tuple[tuple[str, ...], int]] = field(default_factory=list)
    """(ids, amount) of the engine's confirmations of payments WHMCS records."""


# A payment recorded by hand carries the date someone entered; a few days before the money
# booked is a typo or a time zone, a week more is an earlier payment of the same amount.
RECORDED_EARLY_DAYS = 7


def already_recorded(
    payment: PlannedPayment, ledger: InvoiceLedger, claims: Claims
) -> RecordedPayment | None:
    """The payment on the WHMCS invoice that already is `payment`, or None.

    One of the invoice's payments of the same amount that no other payment accounts for: one
    without a transid (entered by hand) dated from a week before the money on; or, when adding
    `payment` would take the invoice past its total, one with any transid. First of all, one
    recorded under any of the payment's ids (a Stripe module records `ch_` or `pi_`).
    """
    named = [p for p in ledger.payments if p.transid and p.transid in payment.aliases]
    if named:
        found = min(named, key=lambda p: p.whmcs_txn_id)
        if found.amount_minor != payment.amount_minor:
            raise WhmcsPaymentConflictError(
                f"WHMCS invoice {ledger.invoice_id} already records {found.transid} (an id of "
                f"payment {payment.transid}) for a different amount; check the payment by hand."
            )
        return replace(found, created=False)
    in_whmcs = {p.transid for p in ledger.payments if p.transid}
    free = [
        p
        for p in ledger.payments
        if p.amount_minor == payment.amount_minor
        and p.whmcs_txn_id not in claims.whmcs_ids
        and not (p.transid and p.transid in claims.transids)
    ]
    overpays = payment.amount_minor > ledger.balance_minor
    earliest = payment.paid_on - dt.timedelta(days=RECORDED_EARLY_DAYS)
    pool = [
        p
        for p in free
        if overpays or (not p.transid.strip() and dt.date.fromisoformat(p.recorded_on) >= earliest)
    ]
    # The engine's confirmations by reference or payer name no WHMCS row by transid: each
    # takes one payment of its amount first.
    unnamed = sum(
        1 for ids, amount in claims.confirmed
        if amount == payment.amount_minor and not in_whmcs.intersection(ids)
    )  # fmt: skip
    left = pool[unnamed:]
    return replace(left[0], created=False) if left else None


def _guard(
    payment: PlannedPayment, claims: Claims, ledger: InvoiceLedger
) -> RecordedPayment | None:
    return already_recorded(payment, ledger, claims)


def _live_written_back(session: Session) -> list[tuple[Allocation, Transaction]]:
    rows = session.execute(
        select(Allocation, Transaction)
        .join(
            Transaction,
            and_(
                Transaction.tenant_id == Allocation.tenant_id,
                Transaction.source + ":" + Transaction.account_ref + ":" + Transaction.source_id
                == Allocation.transaction_ref,
            ),
        )
        .where(live_clause(), Allocation.decision.in_(sorted(WRITE_BACK_DECISIONS)))
        .order_by(Allocation.id)
    ).all()
    return [(a, t) for a, t in rows]


def ids_of(ref: str, aliases: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Every id a WHMCS payment may carry for the transaction `ref`; the one apply writes as
    `transid` first (a Stripe charge's id, the same on every run: the ledger's key)."""
    own = split_transaction_ref(ref)[2]
    more = aliases.get(ref, ())
    return tuple(dict.fromkeys((*more[:1], own, *more[1:])))


def plan_payments(session: Session, default_gateway: str) -> list[PlannedPayment]:
    """The live allocations that may be written back (`may_write_back`) and are not applied."""
    applied = {
        (invoice_id, transid)
        for invoice_id, transid in session.execute(
            select(AppliedPayment.invoice_id, AppliedPayment.transid).where(
                AppliedPayment.state == "applied"
            )
        )
    }
    aliases = transid_aliases(session)
    planned = []
    for allocation, transaction in _live_written_back(session):
        if not may_write_back(allocation.rule, allocation.decision):
            continue
        if allocation.amount_minor <= 0:
            continue
        source = split_transaction_ref(allocation.transaction_ref)[0]
        ids = ids_of(allocation.transaction_ref, aliases)
        if any((allocation.invoice_id, i) in applied for i in ids):
            continue
        # The fee belongs to the payment; it is recorded once, with its first allocation.
        whole = allocation.amount_minor == transaction.amount_minor
        planned.append(
            PlannedPayment(
                allocation_id=allocation.id,
                invoice_id=allocation.invoice_id,
                transid=ids[0],
                amount_minor=allocation.amount_minor,
                fees_minor=transaction.fee_minor if whole else 0,
                currency=allocation.currency,
                gateway=GATEWAYS.get(source, default_gateway),
                paid_on=transaction.booked_on,
                aliases=ids,
            )
        )
    return planned


def claims_on(session: Session, invoice_ids: Iterable[str]) -> dict[str, Claims]:
    """For each invoice, what of its WHMCS payments other payments account for."""
    wanted = set(invoice_ids)
    claims: dict[str, Claims] = defaultdict(Claims)
    aliases = transid_aliases(session)
    for allocation in session.scalars(
        select(Allocation).where(live_clause(), Allocation.invoice_id.in_(wanted))
    ):
        ids = ids_of(allocation.transaction_ref, aliases)
        claim = claims[allocation.invoice_id]
        claim.transids.update(ids)
        if confirms_recorded(allocation.rule):
            claim.confirmed.append((ids, allocation.amount_minor))
    for row in session.scalars(
        select(AppliedPayment).where(
            AppliedPayment.state == "applied", AppliedPayment.invoice_id.in_(wanted)
        )
    ):
        claims[row.invoice_id].transids.add(row.transid)
        if row.response and row.response.get("whmcs_txn_id") is not None:
            claims[row.invoice_id].whmcs_ids.add(int(row.response["whmcs_txn_id"]))
    return {invoice_id: claims[invoice_id] for invoice_id in wanted}


def _intent(engine: Engine, tenant_id: str, payment: PlannedPayment) -> bool:
    """Commit a pending row before calling WHMCS; False when it is already applied."""
    with tenant_session(engine, tenant_id) as session:
        row = session.scalar(
            select(AppliedPayment).where(
                AppliedPayment.invoice_id == payment.invoice_id,
                AppliedPayment.transid == payment.transid,
            )
        )
        if row is not None:
            # A pending row is an interrupted apply: finish it. A failed one waits for a person.
            return row.state == "pending"
        session.add(
            AppliedPayment(
                tenant_id=tenant_id,
                allocation_id=payment.allocation_id,
                invoice_id=payment.invoice_id,
                transid=payment.transid,
                amount_minor=payment.amount_minor,
                fees_minor=payment.fees_minor,
                currency=payment.currency,
                gateway=payment.gateway,
                paid_on=payment.paid_on,
                state="pending",
            )
        )
    return True


def _settle(
    engine: Engine,
    tenant_id: str,
    payment: PlannedPayment,
    *,
    actor: str,
    recorded: RecordedPayment | None,
    failure: str | None,
) -> None:
    with tenant_session(engine, tenant_id) as session:
        row = session.scalars(
            select(AppliedPayment).where(
                AppliedPayment.invoice_id == payment.invoice_id,
                AppliedPayment.transid == payment.transid,
            )
        ).one()
        if recorded is not None:
            row.state = "applied"
            row.applied_at = utcnow()
            row.response = {
                "whmcs_txn_id": recorded.whmcs_txn_id,
                "created": recorded.created,
                "recorded_on": recorded.recorded_on,
            }
            action = "payment.applied" if recorded.created else "payment.found_in_whmcs"
        else:
            row.state = "failed"
            row.response = {"error": failure}
            action = "payment.apply_failed"
            session.add(
                ReconException(
                    tenant_id=tenant_id,
                    exception_key=hashlib.sha256(
                        f"apply:{payment.invoice_id}:{payment.transid}".encode()
                    ).hexdigest(),
                    kind="apply_failed",
                    transaction_ref=payment.transid,
                    invoice_id=payment.invoice_id,
                    amount_minor=payment.amount_minor,
                    currency=payment.currency,
                    detail=failure or "",
                )
            )
        audit.append(
            session,
            actor=actor,
            action=action,
            entity="invoice",
            entity_id=payment.invoice_id,
            details={
                "transid": payment.transid,
                "allocation_id": payment.allocation_id,
                "amount_minor": payment.amount_minor,
                "fees_minor": payment.fees_minor,
                "currency": payment.currency,
                "gateway": payment.gateway,
                **({"error": failure} if failure else {}),
            },
        )


def apply_payments(
    engine: Engine,
    tenant_id: str,
    writer: PaymentWriter,
    *,
    default_gateway: str = "banktransfer",
    dry_run: bool = False,
    actor: str = "apply",
) -> ApplyReport:
    """Record every payment to write back in WHMCS (or, with `dry_run`, list them).

    The caller holds the tenant's writer lock (`apply_locked` takes it)."""
    with tenant_session(engine, tenant_id) as session:
        planned = plan_payments(session, default_gateway)
        claims = claims_on(session, {p.invoice_id for p in planned})
    report = ApplyReport(planned=planned, dry_run=dry_run)
    if dry_run:
        return report
    for payment in planned:
        if not _intent(engine, tenant_id, payment):
            continue
        claim = claims[payment.invoice_id]

        guard = partial(_guard, payment, claim)
        try:
            recorded = writer.add_invoice_payment(
                int(payment.invoice_id),
                payment.transid,
                payment.amount_minor,
                payment.currency,
                payment.fees_minor,
                payment.gateway,
                payment.paid_on,
                guard=guard,
            )
        except WhmcsPaymentConflictError as exc:  # refused by WHMCS too: a person decides
            _settle(engine, tenant_id, payment, actor=actor, recorded=None, failure=str(exc))
            report.failed.append((payment, str(exc)))
            continue
        _settle(engine, tenant_id, payment, actor=actor, recorded=recorded, failure=None)
        claim.whmcs_ids.add(recorded.whmcs_txn_id)
        claim.transids.update(payment.aliases or (payment.transid,))
        if recorded.created:
            report.applied += 1
        else:
            report.already_in_whmcs += 1
    log.info(
        "apply for %s: %d applied, %d already in WHMCS, %d failed",
        tenant_id,
        report.applied,
        report.already_in_whmcs,
        len(report.failed),
    )
    return report


def apply_locked(
    engine: Engine,
    tenant_id: str,
    writer: PaymentWriter,
    *,
    default_gateway: str = "banktransfer",
    actor: str = "apply",
) -> ApplyReport:
    """`apply_payments` under the tenant's writer lock; TenantBusyError (exit 10) when a run
    or another apply of the tenant is writing."""
    with tenant_lock(engine, tenant_id):
        return apply_payments(
            engine, tenant_id, writer, default_gateway=default_gateway, actor=actor
        )


def describe(planned: Iterable[PlannedPayment]) -> list[dict[str, str]]:
    """Rows for a dry-run table."""
    return [
        {
            "invoice": p.invoice_id,
            "transid": p.transid,
            "amount": str(p.amount_minor),
            "currency": p.currency,
            "gateway": p.gateway,
            "date": p.paid_on.isoformat(),
        }
        for p in planned
    ]
