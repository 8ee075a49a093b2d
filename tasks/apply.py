"""WHMCS write-back: record automatic allocations as payments in WHMCS, exactly once.

For each automatic allocation not yet applied, an `applied_payments` row is committed as
`pending` BEFORE WHMCS is called, and marked `applied` after. WHMCS's AddInvoicePayment is made
idempotent by `transid` (the payment's source id): the client looks the transid up on the
invoice first. So a crash between the call and the commit leaves a pending row, and the next
run's call finds the payment in WHMCS and only marks it applied: never a second payment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Engine, and_, select
from sqlalchemy.orm import Session, aliased

from connectors.whmcs import RecordedPayment, WhmcsPaymentConflictError
from recon import audit
from recon.canonical import split_transaction_ref
from recon.db.base import utcnow
from recon.db.models import Allocation, AppliedPayment, ReconException, Transaction
from recon.db.tenancy import tenant_session

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
    ) -> RecordedPayment: ...


@dataclass(frozen=True)
class PlannedPayment:
    """One payment to record in WHMCS."""

    allocation_id: int
    invoice_id: str
    transid: str
    amount_minor: int
    fees_minor: int
    currency: str
    gateway: str
    paid_on: dt.date


@dataclass
class ApplyReport:
    """What an apply run did (or, in a dry run, would do)."""

    planned: list[PlannedPayment] = field(default_factory=list)
    applied: int = 0
    already_in_whmcs: int = 0
    failed: list[tuple[PlannedPayment, str]] = field(default_factory=list)
    dry_run: bool = False


def plan_payments(session: Session, default_gateway: str) -> list[PlannedPayment]:
    """Automatic engine allocations that are neither reversed nor already applied."""
    reversal = aliased(Allocation)
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
        .outerjoin(reversal, reversal.reverses_id == Allocation.id)
        .outerjoin(
            AppliedPayment,
            and_(
                AppliedPayment.invoice_id == Allocation.invoice_id,
                AppliedPayment.transid == Transaction.source_id,
                AppliedPayment.state == "applied",
            ),
        )
        .where(
            Allocation.decision == "auto",
            Allocation.reverses_id.is_(None),
            reversal.id.is_(None),
            AppliedPayment.id.is_(None),
            Allocation.amount_minor > 0,
        )
        .order_by(Allocation.id)
    ).all()
    planned = []
    for allocation, transaction in rows:
        source, _, source_id = split_transaction_ref(allocation.transaction_ref)
        # The fee belongs to the payment; it is recorded once, with its first allocation.
        whole = allocation.amount_minor == transaction.amount_minor
        planned.append(
            PlannedPayment(
                allocation_id=allocation.id,
                invoice_id=allocation.invoice_id,
                transid=source_id,
                amount_minor=allocation.amount_minor,
                fees_minor=transaction.fee_minor if whole else 0,
                currency=allocation.currency,
                gateway=GATEWAYS.get(source, default_gateway),
                paid_on=transaction.booked_on,
            )
        )
    return planned


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
    """Record every pending automatic allocation in WHMCS (or, with `dry_run`, list them)."""
    with tenant_session(engine, tenant_id) as session:
        planned = plan_payments(session, default_gateway)
    report = ApplyReport(planned=planned, dry_run=dry_run)
    if dry_run:
        return report
    for payment in planned:
        if not _intent(engine, tenant_id, payment):
            continue
        try:
            recorded = writer.add_invoice_payment(
                int(payment.invoice_id),
                payment.transid,
                payment.amount_minor,
                payment.currency,
                payment.fees_minor,
                payment.gateway,
                payment.paid_on,
            )
        except WhmcsPaymentConflictError as exc:
            _settle(engine, tenant_id, payment, actor=actor, recorded=None, failure=str(exc))
            report.failed.append((payment, str(exc)))
            continue
        _settle(engine, tenant_id, payment, actor=actor, recorded=recorded, failure=None)
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
