"""WHMCS: fetch every page a reconciliation needs, and rebuild the canonical invoices and
recorded payments from the landed pages alone (so a replay calls WHMCS zero times)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from connectors.pages import Page
from connectors.whmcs import (
    WhmcsClient,
    WhmcsDataError,
    parse_invoices,
    parse_recorded,
)
from connectors.whmcs_mysql import WhmcsDatabase
from recon.canonical import INVOICES, RECORDED
from tasks.land import StoredPage
from tasks.load import Batch

PROVIDER = "whmcs"


def fetch_all(
    client_factory: Callable[[Callable[[Page], None]], WhmcsClient],
) -> Callable[[Callable[[Page], None]], None]:
    """A `tasks.land.Fetch` that reads invoices, the payments ledger and what their currencies
    need, handing every raw page on before it is parsed."""

    def fetch(on_page: Callable[[Page], None]) -> None:
        with client_factory(on_page) as client:
            invoices = client.invoices_frame()
            client.recorded_frame(invoices)

    return fetch


MYSQL_SNAPSHOT = "mysql:snapshot"


def fetch_mysql(database: WhmcsDatabase) -> Callable[[Callable[[Page], None]], None]:
    """A `tasks.land.Fetch` that reads WHMCS's own tables in one read-only snapshot and lands
    the raw rows as one page (JSON; decimals and dates as strings, exactly as read)."""

    def fetch(on_page: Callable[[Page], None]) -> None:
        invoices, transactions = database.snapshot_rows()
        body = json.dumps(
            {"invoices": invoices, "transactions": transactions}, default=str, sort_keys=True
        ).encode("utf-8")
        on_page(Page(MYSQL_SNAPSHOT, database.where, 200, body))

    return fetch


def page_callback(on_page: Callable[[Page], None]) -> Callable[[str, str, int, bytes], None]:
    """Adapt the landing callback to the WHMCS client's `on_page(endpoint, key, status, body)`."""

    def hand_on(endpoint: str, request_key: str, status: int, body: bytes) -> None:
        on_page(Page(endpoint, request_key, status, body))

    return hand_on


def _records(body: dict[str, Any], outer: str, inner: str) -> list[dict[str, Any]]:
    node = body.get(outer)
    if isinstance(node, dict):
        node = node.get(inner)
    if node in (None, ""):
        return []
    if not isinstance(node, list):
        raise WhmcsDataError(f"WHMCS {outer} is not a list")
    return [row for row in node if isinstance(row, dict)]


def _dates(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    frame = frame.copy()
    for column in columns:
        frame[column] = [
            dt.date.fromisoformat(str(v)[:10]) if isinstance(v, str) and v[:4] != "0000" else None
            for v in frame[column]
        ]
    return frame


def _as_text(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    frame = frame.copy()
    for column in columns:
        frame[column] = [None if pd.isna(v) else str(v) for v in frame[column]]
    return frame


def whmcs_batches(pages: list[StoredPage]) -> list[Batch]:
    """The INVOICES and RECORDED batches rebuilt from a landed WHMCS fetch."""
    invoices: list[dict[str, Any]] = []
    transactions: list[dict[str, Any]] = []
    client_currency: dict[int, str] = {}
    currencies: dict[int, str] = {}
    for stored in pages:
        body = json.loads(stored.page.body)
        endpoint = stored.page.endpoint
        if endpoint == MYSQL_SNAPSHOT:
            invoices += body["invoices"]
            transactions += body["transactions"]
        elif endpoint == "GetInvoices":
            invoices += _records(body, "invoices", "invoice")
        elif endpoint == "GetTransactions":
            transactions += _records(body, "transactions", "transaction")
        elif endpoint == "GetClientsDetails":
            client = body.get("client") if isinstance(body.get("client"), dict) else body
            code = client.get("currency_code")
            if code:
                client_currency[int(client.get("id") or client.get("userid"))] = str(code)
        elif endpoint == "GetCurrencies":
            for row in _records(body, "currencies", "currency"):
                currencies[int(row["id"])] = str(row["code"])
    # The ledger is read more than once per fetch (for invoices, then for recorded payments).
    invoices = list({str(row.get("id")): row for row in invoices}.values())
    transactions = list({str(row.get("id")): row for row in transactions}.values())
    for client_id, code in list(client_currency.items()):
        client_currency[client_id] = code.upper()
    invoice_frame = parse_invoices(invoices, transactions, client_currency=client_currency)
    invoice_currency = dict(
        zip(invoice_frame["invoice_id"].astype(int), invoice_frame["currency"], strict=True)
    )
    for invoice_id, client_id, code in zip(
        invoice_frame["invoice_id"], invoice_frame["client_id"], invoice_frame["currency"],
        strict=True,
    ):  # fmt: skip
        client_currency.setdefault(int(client_id), str(code))
        invoice_currency[int(invoice_id)] = str(code)
    recorded_frame = parse_recorded(
        transactions,
        invoice_currency=invoice_currency,
        client_currency=client_currency,
        currencies=currencies,
    )
    invoice_rows = _as_text(_dates(invoice_frame, INVOICES.dates), ("invoice_id", "client_id"))
    recorded_rows = _as_text(
        _dates(recorded_frame, RECORDED.dates), ("whmcs_txn_id", "invoice_id", "transid")
    )
    return [
        Batch(PROVIDER, INVOICES, invoice_rows.reset_index(drop=True)),
        Batch(PROVIDER, RECORDED, recorded_rows.reset_index(drop=True)),
    ]
