"""WHMCS's answers: transactions, invoice order, and its own tables as rows."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from connectors.sandbox.whmcs.model import ORDER_COLUMNS, Invoice, Tables, Transaction
from connectors.sandbox.whmcs.values import client_uuid, money


def transaction_json(x: Transaction) -> dict[str, str]:
    """A transaction as GetTransactions and GetInvoice show it (all strings)."""
    return {
        "id": str(x.id),
        "userid": str(x.userid),
        "currency": "0",
        "gateway": x.gateway,
        "date": x.date,
        "description": x.description,
        "amountin": money(x.amountin),
        "fees": money(x.fees),
        "amountout": money(x.amountout),
        "rate": "1.00000",
        "transid": x.transid,
        "invoiceid": str(x.invoiceid),
        "refundid": "0",
    }


def ordered(rows: list[Invoice], orderby: str, order: str) -> list[Invoice]:
    """WHMCS's ordering: by `orderby`, or by default status descending then due date."""
    reverse = order == "desc"
    if orderby not in ORDER_COLUMNS:
        by_due = sorted(rows, key=lambda i: i.duedate, reverse=reverse)
        return sorted(by_due, key=lambda i: i.status, reverse=True)
    keys: dict[str, Callable[[Invoice], Any]] = {
        "id": lambda i: i.id,
        "invoicenumber": lambda i: (i.invoicenum, i.id),
        "date": lambda i: i.date,
        "duedate": lambda i: i.duedate,
        "total": lambda i: i.total,
        "status": lambda i: i.status,
    }
    return sorted(rows, key=keys[orderby], reverse=reverse)


def table_rows(t: Tables) -> dict[str, list[dict[str, Any]]]:
    """WHMCS's own tables as rows with its column names (to mirror into a real database)."""
    return {
        "tblcurrencies": [
            {
                "id": c.id,
                "code": c.code,
                "prefix": c.prefix,
                "suffix": c.suffix,
                "format": 1,
                "rate": Decimal("1.00000"),
                "default": 1 if i == 0 else 0,
            }
            for i, c in enumerate(t.currencies)
        ],
        "tblclients": [
            {
                "id": c.id,
                "uuid": client_uuid(c.id),
                "firstname": c.firstname,
                "lastname": c.lastname,
                "companyname": c.companyname,
                "email": c.email,
                "currency": c.currency,
                "status": "Active",
            }
            for c in t.clients.values()
        ],
        "tblinvoices": [
            {
                "id": i.id,
                "userid": i.userid,
                "invoicenum": i.invoicenum,
                "date": i.date,
                "duedate": i.duedate,
                "datepaid": i.datepaid,
                "subtotal": i.total,
                "credit": Decimal("0.00"),
                "tax": Decimal("0.00"),
                "tax2": Decimal("0.00"),
                "total": i.total,
                "status": i.status,
                "paymentmethod": i.paymentmethod,
            }
            for i in t.invoices.values()
        ],
        "tblaccounts": [
            {
                "id": x.id,
                "userid": x.userid,
                "currency": 0,
                "gateway": x.gateway,
                "date": x.date,
                "description": x.description,
                "amountin": x.amountin,
                "fees": x.fees,
                "amountout": x.amountout,
                "rate": Decimal("1.00000"),
                "transid": x.transid,
                "invoiceid": x.invoiceid,
                "refundid": 0,
            }
            for x in t.transactions
        ],
    }
