"""WHMCS tables from the DESIGN §4.3 `invoices` and `recorded` frames."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pandas as pd

from connectors.sandbox.whmcs.model import (
    INVOICE_COLUMNS,
    INVOICE_STATUSES,
    OPENING_TRANSID_PREFIX,
    RECORDED_COLUMNS,
    ZERO_DATETIME,
    Client,
    Currency,
    Invoice,
    Tables,
    Transaction,
)
from connectors.sandbox.whmcs.values import iso_date, seed_amount, seed_text
from recon.money import normalise_currency


def seed_tables(
    invoices: pd.DataFrame, recorded: pd.DataFrame | None, *, opening_payments: bool
) -> Tables:
    """WHMCS tables from the §4.3 frames; ValueError on anything WHMCS could not hold."""
    _require_columns(invoices, INVOICE_COLUMNS, "invoices")
    tables = Tables()
    codes = sorted({normalise_currency(str(c)) for c in invoices["currency"]})
    tables.currencies = [Currency(i + 1, code) for i, code in enumerate(codes)]
    balances = _seed_invoices(tables, invoices)
    if recorded is not None:
        _seed_recorded(tables, recorded)
    _settle(tables, balances, opening_payments=opening_payments)
    return tables


def _seed_invoices(tables: Tables, invoices: pd.DataFrame) -> dict[int, Decimal]:
    """Clients and invoices into `tables`; the seeded balance of every invoice."""
    currency_ids = {c.code: c.id for c in tables.currencies}
    balances: dict[int, Decimal] = {}
    for row in invoices.to_dict("records"):
        invoice_id = int(row["invoice_id"])
        if invoice_id in tables.invoices:
            raise ValueError(f"invoice {invoice_id} appears twice in the seed")
        code = normalise_currency(str(row["currency"]))
        client = _client_from(row, currency_ids[code])
        known = tables.clients.setdefault(client.id, client)
        if known != client:
            raise ValueError(
                f"client {client.id} has different names or currencies across invoices; "
                "WHMCS keeps one name and one currency per client"
            )
        status = str(row["status"])
        if status not in INVOICE_STATUSES:
            raise ValueError(f"invoice {invoice_id} has unknown WHMCS status {status!r}")
        tables.invoices[invoice_id] = Invoice(
            id=invoice_id,
            invoicenum=seed_text(row.get("invoice_num")),
            userid=client.id,
            date=iso_date(row["issued_on"]),
            duedate=iso_date(row["due_on"]),
            total=seed_amount(row["total"], code, f"invoice {invoice_id} total"),
            status=status,
        )
        balances[invoice_id] = seed_amount(row["balance"], code, f"invoice {invoice_id} balance")
    return balances


def _settle(tables: Tables, balances: Mapping[int, Decimal], *, opening_payments: bool) -> None:
    """Check each balance against its payments (or record the gap as an opening payment) and
    date the paid invoices."""
    paid: dict[int, Decimal] = {}
    last_paid: dict[int, str] = {}
    for x in tables.transactions:
        paid[x.invoiceid] = paid.get(x.invoiceid, Decimal("0.00")) + x.amountin - x.amountout
        last_paid[x.invoiceid] = max(last_paid.get(x.invoiceid, ""), x.date)
    next_id = max((x.id for x in tables.transactions), default=0) + 1
    for invoice_id, balance in balances.items():
        invoice = tables.invoices[invoice_id]
        gap = invoice.total - paid.get(invoice_id, Decimal("0.00")) - balance
        if gap and not opening_payments:
            raise ValueError(
                f"invoice {invoice_id}: balance {balance} is not total {invoice.total} minus the "
                f"recorded payments {paid.get(invoice_id, Decimal('0.00'))}; WHMCS derives the "
                "balance that way (pass opening_payments=True to record the difference as an "
                "earlier payment)"
            )
        if gap:
            opening = _opening(next_id, invoice, gap)
            tables.transactions.append(opening)
            tables.opening_ids.add(next_id)
            last_paid[invoice_id] = max(last_paid.get(invoice_id, ""), opening.date)
            next_id += 1
        if invoice.status == "Paid" and invoice.datepaid == ZERO_DATETIME:
            invoice.datepaid = last_paid.get(invoice_id) or f"{invoice.date} 00:00:00"


def _opening(txn_id: int, invoice: Invoice, gap: Decimal) -> Transaction:
    """The payment a WHMCS running before the seeded period would hold for `gap`."""
    return Transaction(
        id=txn_id,
        userid=invoice.userid,
        gateway="banktransfer",
        date=f"{invoice.date} 00:00:00",
        amountin=gap if gap > 0 else Decimal("0.00"),
        fees=Decimal("0.00"),
        amountout=-gap if gap < 0 else Decimal("0.00"),
        transid=f"{OPENING_TRANSID_PREFIX}{invoice.id}",
        invoiceid=invoice.id,
        description="Payment recorded before the seeded period",
    )


def _seed_recorded(tables: Tables, recorded: pd.DataFrame) -> None:
    _require_columns(recorded, RECORDED_COLUMNS, "recorded")
    seen: set[int] = set()
    for row in recorded.to_dict("records"):
        txn_id = int(row["whmcs_txn_id"])
        invoice_id = int(row["invoice_id"])
        if txn_id in seen:
            raise ValueError(f"recorded payment {txn_id} appears twice in the seed")
        seen.add(txn_id)
        invoice = tables.invoices.get(invoice_id)
        if invoice is None:
            raise ValueError(f"recorded payment {txn_id} is for unknown invoice {invoice_id}")
        client = tables.clients[invoice.userid]
        code = next(c.code for c in tables.currencies if c.id == client.currency)
        if normalise_currency(str(row["currency"])) != code:
            raise ValueError(
                f"recorded payment {txn_id} is in {row['currency']} but client {client.id} "
                f"is billed in {code}; WHMCS records payments in the client's currency"
            )
        amount = seed_amount(row["amount"], code, f"recorded payment {txn_id} amount")
        tables.transactions.append(
            Transaction(
                id=txn_id,
                userid=client.id,
                gateway=seed_text(row.get("gateway")),
                date=f"{iso_date(row['recorded_on'])} 00:00:00",
                amountin=amount if amount >= 0 else Decimal("0.00"),
                fees=seed_amount(row.get("fees") or "0", code, f"recorded payment {txn_id} fees"),
                amountout=-amount if amount < 0 else Decimal("0.00"),
                transid=seed_text(row.get("transid")),
                invoiceid=invoice_id,
            )
        )
    tables.transactions.sort(key=lambda x: x.id)


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {name} frame lacks columns {', '.join(missing)}")


def _client_from(row: Mapping[Any, Any], currency_id: int) -> Client:
    first, _, last = seed_text(row.get("client_name")).partition(" ")
    return Client(
        id=int(row["client_id"]),
        firstname=first,
        lastname=last,
        companyname=seed_text(row.get("company_name")),
        currency=currency_id,
    )
