"""Payments as WHMCS records them, and an invoice's ledger as WHMCS shows it now."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RecordedPayment:
    """A payment as WHMCS records it (one `tblaccounts` row); `created`: added by this call."""

    whmcs_txn_id: int
    invoice_id: int
    recorded_on: str
    amount_minor: int
    fees_minor: int
    currency: str
    gateway: str
    transid: str
    created: bool


@dataclass(frozen=True)
class InvoiceLedger:
    """An invoice as WHMCS shows it now (GetInvoice): currency, open balance, payments."""

    invoice_id: int
    currency: str
    status: str
    balance_minor: int
    payments: tuple[RecordedPayment, ...]


PaymentGuard = Callable[[InvoiceLedger], RecordedPayment | None]
"""`guard(ledger)`: the payment already recorded on the invoice that is this one, or None."""
