"""Small builders for matching tests: rows as the §4.3 files write them, then the engine."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from recon.matching import MatchConfig, MatchResult, inputs_from_frames, match
from recon.matching.frames import (
    INVOICE_COLUMNS,
    PAYOUT_COLUMNS,
    PAYOUT_LINE_COLUMNS,
    RECORDED_COLUMNS,
    TRANSACTION_COLUMNS,
    MatchInputs,
)

FORMAT = "INV-{YEAR}-{NUMBER}"


def invoice(
    invoice_id: int,
    total: str,
    *,
    client_id: str = "1",
    client_name: str = "John Smith",
    company_name: str = "",
    balance: str | None = None,
    status: str = "Unpaid",
    currency: str = "EUR",
    issued_on: str = "2026-03-01",
    due_on: str = "2026-03-15",
    invoice_num: str = "",
) -> dict[str, str]:
    """One invoice row (balance defaults to the total)."""
    return {
        "invoice_id": str(invoice_id),
        "invoice_num": invoice_num,
        "client_id": client_id,
        "client_name": client_name,
        "company_name": company_name,
        "issued_on": issued_on,
        "due_on": due_on,
        "total": total,
        "balance": total if balance is None else balance,
        "currency": currency,
        "status": status,
    }


def payment(
    transaction_id: str,
    amount: str,
    reference: str = "",
    *,
    counterparty: str = "John Smith",
    booked_on: str = "2026-03-10",
    currency: str = "EUR",
    source: str = "bank",
) -> dict[str, str]:
    """One transaction row (credit positive)."""
    return {
        "transaction_id": transaction_id,
        "source": source,
        "account_id": "acct-1",
        "booked_on": booked_on,
        "amount": amount,
        "currency": currency,
        "counterparty": counterparty,
        "reference": reference,
    }


def recorded(
    whmcs_txn_id: str,
    invoice_id: int,
    amount: str,
    *,
    transid: str = "",
    gateway: str = "stripe",
    recorded_on: str = "2026-03-10",
    currency: str = "EUR",
    fees: str = "0.00",
) -> dict[str, str]:
    """One payment WHMCS has recorded."""
    return {
        "whmcs_txn_id": whmcs_txn_id,
        "invoice_id": str(invoice_id),
        "recorded_on": recorded_on,
        "amount": amount,
        "fees": fees,
        "currency": currency,
        "gateway": gateway,
        "transid": transid,
    }


def payout(
    payout_id: str,
    amount: str,
    *,
    arrival_on: str = "2026-03-12",
    source: str = "stripe",
    status: str = "paid",
    currency: str = "EUR",
) -> dict[str, str]:
    """One payout of a payment provider."""
    return {
        "payout_id": payout_id,
        "source": source,
        "arrival_on": arrival_on,
        "amount": amount,
        "currency": currency,
        "status": status,
    }


def frame(rows: Iterable[dict[str, str]], columns: tuple[str, ...]) -> pd.DataFrame:
    """Rows as a text frame with exactly the given columns."""
    data = list(rows)
    return pd.DataFrame({c: pd.Series([r[c] for r in data], dtype="str") for c in columns})


def inputs(
    invoices: Iterable[dict[str, str]],
    transactions: Iterable[dict[str, str]],
    recorded_rows: Iterable[dict[str, str]] | None = None,
    payouts: Iterable[dict[str, str]] | None = None,
    lines: Iterable[tuple[str, str]] | None = None,
) -> MatchInputs:
    """Validated inputs from rows."""
    return inputs_from_frames(
        frame(invoices, INVOICE_COLUMNS),
        frame(transactions, TRANSACTION_COLUMNS),
        frame(recorded_rows, RECORDED_COLUMNS) if recorded_rows is not None else None,
        frame(payouts, PAYOUT_COLUMNS) if payouts is not None else None,
        frame(
            ({"payout_id": p, "transaction_id": t} for p, t in (lines or [])),
            PAYOUT_LINE_COLUMNS,
        )
        if payouts is not None
        else None,
    )


def run(
    invoices: Iterable[dict[str, str]],
    transactions: Iterable[dict[str, str]],
    recorded_rows: Iterable[dict[str, str]] | None = None,
    payouts: Iterable[dict[str, str]] | None = None,
    lines: Iterable[tuple[str, str]] | None = None,
    **settings: Any,
) -> MatchResult:
    """Match rows with the tenant format INV-{YEAR}-{NUMBER} unless told otherwise."""
    config = MatchConfig(**{"invoice_number_format": FORMAT, **settings})
    return match(inputs(invoices, transactions, recorded_rows, payouts, lines), config)


def allocations(result: MatchResult) -> set[tuple[str, int, int, str]]:
    """(transaction, invoice, minor amount, decision) of every allocation."""
    a = result.allocations
    return set(
        zip(
            a["transaction_id"],
            a["invoice_id"].astype(int),
            a["amount"].astype(int),
            a["decision"],
            strict=True,
        )
    )


def auto(result: MatchResult) -> set[tuple[str, int, int]]:
    """(transaction, invoice, minor amount) of the automatic allocations."""
    return {(t, i, a) for t, i, a, d in allocations(result) if d == "auto"}


def review(result: MatchResult) -> set[tuple[str, int, int]]:
    """(transaction, invoice, minor amount) of the suggestions for review."""
    return {(t, i, a) for t, i, a, d in allocations(result) if d == "review"}


def rules_of(result: MatchResult, transaction_id: str) -> set[str]:
    """The rules of a transaction's allocations."""
    a = result.allocations
    return set(a.loc[a["transaction_id"] == transaction_id, "rule"])


def exceptions(result: MatchResult) -> set[tuple[str, str, int, int]]:
    """(kind, transaction, invoice or 0, minor amount) of every exception."""
    e = result.exceptions
    return set(
        zip(
            e["kind"],
            e["transaction_id"],
            e["invoice_id"].astype(int),
            e["amount"].astype(int),
            strict=True,
        )
    )


def kinds_of(result: MatchResult, transaction_id: str) -> set[str]:
    """The exception kinds raised for a transaction."""
    e = result.exceptions
    return set(e.loc[e["transaction_id"] == transaction_id, "kind"])
