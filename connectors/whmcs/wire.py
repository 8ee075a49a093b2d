"""WHMCS's wire format as canonical frames (pure; shared with the database mode, `whmcs_mysql`).

`parse_invoices`/`parse_recorded` turn WHMCS rows (from the API or from the database) into the
canonical frames: money as int64 minor units, ISO dates, WHMCS statuses. WHMCS keeps no balance
column: like WHMCS itself (GetInvoice), the balance is derived as
`total - (sum(amountin) - sum(amountout))` of the invoice's transactions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from recon.canonical import INVOICES, RECORDED
from recon.errors import ReconError
from recon.money import MoneyError, normalise_currency, to_minor

PROVIDER = "WHMCS"

# The canonical frames' columns: the connector's frames are what the loader takes.
INVOICE_FRAME_COLUMNS = INVOICES.columns
RECORDED_FRAME_COLUMNS = RECORDED.columns
_INT_COLUMNS = frozenset(
    {
        "invoice_id",
        "client_id",
        "total_minor",
        "balance_minor",
        "whmcs_txn_id",
        "amount_minor",
        "fees_minor",
    }
)
_FLAT_CURRENCY = re.compile(r"^currencies\[currency\]\[(\d+)\]\[(\w+)\]$")


class WhmcsDataError(ReconError):
    """A WHMCS record cannot be put in canonical form; the message names the record and field."""


def request_key(params: Mapping[str, str]) -> str:
    """A stable key for a read's parameters (credentials are never part of `params`)."""
    return urlencode(sorted(params.items()))


def parse_invoices(
    invoices: Iterable[Mapping[str, Any]],
    transactions: Iterable[Mapping[str, Any]],
    *,
    client_currency: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """Canonical invoices from GetInvoices-shaped rows and the ledger rows that pay them."""
    paid: dict[int, list[Mapping[str, Any]]] = {}
    for row in transactions:
        paid.setdefault(as_int(row.get("invoiceid") or 0, "transaction invoiceid"), []).append(row)
    records = []
    for row in invoices:
        invoice_id = as_int(row.get("id"), "invoice id")
        what = f"WHMCS invoice {invoice_id}"
        client_id = as_int(row.get("userid"), f"{what} userid")
        code = row.get("currencycode") or (client_currency or {}).get(client_id)
        if not code:
            raise WhmcsDataError(f"{what}: no currency for client {client_id}.")
        currency = as_currency(str(code), what)
        total = as_minor(row.get("total"), currency, f"{what} total")
        settled = sum(
            as_minor(t.get("amountin"), currency, f"{what} payment amountin")
            - as_minor(t.get("amountout") or "0", currency, f"{what} payment amountout")
            for t in paid.get(invoice_id, [])
        )
        name = f"{as_text(row.get('firstname'))} {as_text(row.get('lastname'))}".strip()
        records.append(
            {
                "invoice_id": invoice_id,
                "invoice_num": as_text(row.get("invoicenum")),
                "client_id": client_id,
                "client_name": name,
                "company_name": as_text(row.get("companyname")),
                "issued_on": as_iso_date(row.get("date"), f"{what} date"),
                "due_on": as_iso_date(row.get("duedate"), f"{what} duedate"),
                "total_minor": total,
                "balance_minor": total - settled,
                "currency": currency,
                "status": as_text(row.get("status")),
            }
        )
    return canonical_frame(records, INVOICE_FRAME_COLUMNS, "invoice_id")


def parse_recorded(
    transactions: Iterable[Mapping[str, Any]],
    *,
    invoice_currency: Mapping[int, str],
    client_currency: Mapping[int, str] | None = None,
    currencies: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """Canonical recorded payments from GetTransactions-shaped (`tblaccounts`) rows.

    A row's currency is its `currencycode` if present, else its own currency id (rows without a
    client), else its invoice's currency, else its client's.
    """
    records = []
    for row in transactions:
        txn_id = as_int(row.get("id"), "transaction id")
        code = row.get("currencycode")
        if not code:
            currency_id = as_int(row.get("currency") or 0, f"transaction {txn_id} currency")
            invoice_id = as_int(row.get("invoiceid") or 0, f"transaction {txn_id} invoiceid")
            client_id = as_int(row.get("userid") or 0, f"transaction {txn_id} userid")
            code = (
                (currencies or {}).get(currency_id)
                if currency_id
                else invoice_currency.get(invoice_id) or (client_currency or {}).get(client_id)
            )
        if not code:
            raise WhmcsDataError(f"WHMCS transaction {txn_id}: its currency cannot be determined.")
        records.append(recorded_row(row, str(code)))
    return canonical_frame(records, RECORDED_FRAME_COLUMNS, "whmcs_txn_id")


def recorded_row(row: Mapping[str, Any], code: str) -> dict[str, Any]:
    """One `tblaccounts` row as a canonical recorded payment in currency `code`."""
    txn_id = as_int(row.get("id"), "transaction id")
    what = f"WHMCS transaction {txn_id}"
    currency = as_currency(code, what)
    amount = as_minor(row.get("amountin"), currency, f"{what} amountin") - as_minor(
        row.get("amountout") or "0", currency, f"{what} amountout"
    )
    return {
        "whmcs_txn_id": txn_id,
        "invoice_id": as_int(row.get("invoiceid") or 0, f"{what} invoiceid"),
        "recorded_on": as_iso_date(row.get("date"), f"{what} date"),
        "amount_minor": amount,
        "fees_minor": as_minor(row.get("fees") or "0", currency, f"{what} fees"),
        "currency": currency,
        "gateway": as_text(row.get("gateway")),
        "transid": as_text(row.get("transid")),
    }


def canonical_frame(
    records: list[dict[str, Any]], columns: tuple[str, ...], key: str
) -> pd.DataFrame:
    """Records as a canonical frame: integer columns int64, sorted by `key`."""
    frame = pd.DataFrame(
        {
            column: pd.Series(
                [r[column] for r in records],
                dtype="int64" if column in _INT_COLUMNS else object,
            )
            for column in columns
        }
    )
    return frame.sort_values(key, kind="stable").reset_index(drop=True)


# -- coercion --------------------------------------------------------------------------------------


def records_of(value: Any, key: str, endpoint: str) -> list[dict[str, Any]]:
    """`{"invoice": [...]}`, `{"invoice": {...}}`, `[]`, `""` or missing -> a list of records."""
    if value in (None, "", []):
        return []
    if isinstance(value, dict):
        inner = value.get(key, [])
        items = [inner] if isinstance(inner, dict) else inner
    else:
        items = value
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise WhmcsDataError(f"WHMCS {endpoint} sent {key} records in an unexpected shape.")
    return items


def currencies_of(body: Mapping[str, Any]) -> dict[int, str]:
    """GetCurrencies in its nested shape or the NVP-flattened one of the WHMCS docs."""
    rows = records_of(body.get("currencies"), "currency", "GetCurrencies")
    if not rows:
        flat: dict[int, dict[str, Any]] = {}
        for name, value in body.items():
            if match := _FLAT_CURRENCY.match(name):
                flat.setdefault(int(match[1]), {})[match[2]] = value
        rows = [flat[i] for i in sorted(flat)]
    return {
        as_int(r.get("id"), "currency id"): as_currency(str(r.get("code")), "WHMCS currency")
        for r in rows
    }


def as_int(value: Any, what: str) -> int:
    """A whole number; WhmcsDataError naming `what` otherwise."""
    if isinstance(value, bool):
        raise WhmcsDataError(f"{what}: {value!r} is not a whole number.")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise WhmcsDataError(f"{what}: {value!r} is not a whole number.") from None


def as_text(value: Any) -> str:
    """The text of a value, "" for None."""
    return "" if value is None else str(value)


def as_minor(value: Any, currency: str, what: str) -> int:
    """A decimal amount as minor units of `currency`; never from a float."""
    if isinstance(value, float):
        raise WhmcsDataError(f"{what}: {value!r} is a float, not a decimal amount.")
    try:
        return to_minor(str(value), currency)
    except MoneyError as exc:
        raise WhmcsDataError(f"{what}: {exc}.") from None


def as_currency(code: str, what: str) -> str:
    """An ISO 4217 code, upper case."""
    try:
        return normalise_currency(code)
    except MoneyError as exc:
        raise WhmcsDataError(f"{what}: {exc}.") from None


def as_iso_date(value: Any, what: str) -> str:
    """A date (or datetime, or text starting with one) as ISO `YYYY-MM-DD`."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = as_text(value).strip()
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise WhmcsDataError(f"{what}: {text!r} is not a date.") from None
