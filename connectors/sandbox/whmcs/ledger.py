"""The sandbox's WHMCS: seeded tables behind one lock, views for tests, shared internals."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from connectors.sandbox.faults import FaultPlan
from connectors.sandbox.whmcs.model import (
    INVOICE_STATUSES,
    JSON,
    ZERO_DATETIME,
    Currency,
    Invoice,
)
from connectors.sandbox.whmcs.seed import seed_tables
from connectors.sandbox.whmcs.values import money
from connectors.sandbox.whmcs.wire import ordered, table_rows, transaction_json


class Ledger:
    """WHMCS's tables, credentials and clocks behind one lock; see `WhmcsState`."""

    def __init__(
        self,
        invoices: pd.DataFrame,
        recorded: pd.DataFrame | None = None,
        *,
        identifier: str,
        secret: str,
        allowed_ips: Sequence[str] | None = None,
        access_key: str | None = None,
        faults: FaultPlan | None = None,
        opening_payments: bool = False,
        today: Callable[[], date] = date.today,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not identifier or not secret:
            raise ValueError("the sandbox needs an API identifier and secret")
        self._identifier = identifier
        self._secret = secret
        self._allowed_ips = None if allowed_ips is None else frozenset(allowed_ips)
        self._access_key = access_key
        self.faults = faults if faults is not None else FaultPlan()
        self._today = today
        self._now = now
        self._lock = threading.Lock()
        self._tables = seed_tables(invoices, recorded, opening_payments=opening_payments)
        # Invoices in each (orderby, order) a caller asked for: paging 50,000 invoices must not
        # sort them again for every page. Cleared whenever an invoice changes.
        self._ordered: dict[tuple[str, str], list[Invoice]] = {}

    # -- views for tests -----------------------------------------------------------------------

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """WHMCS's own tables as rows with its column names (to mirror into a real database)."""
        with self._lock:
            return table_rows(self._tables)

    def opening_payment_ids(self) -> frozenset[int]:
        """Ids of the payments `opening_payments=True` added (not in the seeded `recorded`)."""
        with self._lock:
            return frozenset(self._tables.opening_ids)

    def payments(self, invoice_id: int, transid: str | None = None) -> list[dict[str, str]]:
        """The transactions recorded against an invoice (optionally with one `transid`)."""
        with self._lock:
            return [
                transaction_json(x)
                for x in self._tables.transactions
                if x.invoiceid == invoice_id and (transid is None or x.transid == transid)
            ]

    def balance(self, invoice_id: int) -> Decimal:
        """What WHMCS's GetInvoice would report as the invoice's balance."""
        with self._lock:
            return self._balance(self._tables.invoices[invoice_id])

    def status(self, invoice_id: int) -> str:
        """The invoice's current WHMCS status."""
        with self._lock:
            return self._tables.invoices[invoice_id].status

    def set_invoice_status(self, invoice_id: int, status: str) -> None:
        """Change an invoice's status as an admin does in WHMCS (e.g. cancel it)."""
        if status not in INVOICE_STATUSES:
            raise ValueError(f"unknown WHMCS invoice status {status!r}")
        with self._lock:
            self._tables.invoices[invoice_id].status = status
            self._ordered.clear()

    # -- internals -----------------------------------------------------------------------------

    def _in_order(self, orderby: str, order: str) -> list[Invoice]:
        """Every invoice in WHMCS's order for (`orderby`, `order`), sorted once per change."""
        key = (orderby, order)
        if key not in self._ordered:
            self._ordered[key] = ordered(list(self._tables.invoices.values()), orderby, order)
        return self._ordered[key]

    def _balance(self, invoice: Invoice) -> Decimal:
        paid = sum(
            (
                x.amountin - x.amountout
                for x in self._tables.transactions
                if x.invoiceid == invoice.id
            ),
            Decimal("0.00"),
        )
        return invoice.total - paid

    def _currency(self, currency_id: int) -> Currency:
        return next(c for c in self._tables.currencies if c.id == currency_id)

    def _invoice_row(self, invoice: Invoice) -> JSON:
        client = self._tables.clients[invoice.userid]
        currency = self._currency(client.currency)
        return {
            "id": invoice.id,
            "userid": invoice.userid,
            "firstname": client.firstname,
            "lastname": client.lastname,
            "companyname": client.companyname,
            "invoicenum": invoice.invoicenum,
            "date": invoice.date,
            "duedate": invoice.duedate,
            "datepaid": invoice.datepaid,
            "last_capture_attempt": ZERO_DATETIME,
            "date_refunded": ZERO_DATETIME,
            "date_cancelled": ZERO_DATETIME,
            "subtotal": money(invoice.total),
            "credit": "0.00",
            "tax": "0.00",
            "tax2": "0.00",
            "total": money(invoice.total),
            "taxrate": "0.000",
            "taxrate2": "0.000",
            "status": invoice.status,
            "paymentmethod": invoice.paymentmethod,
            "paymethodid": None,
            "notes": "",
            "created_at": f"{invoice.date} 00:00:00",
            "updated_at": f"{invoice.date} 00:00:00",
            "currencycode": currency.code,
            "currencyprefix": currency.prefix,
            "currencysuffix": currency.suffix,
        }
