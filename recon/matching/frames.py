"""The shapes the engine consumes and produces (DESIGN §4.3), as typed pandas frames.

Inside the engine money is int64 minor units and dates are int32 days since 1970-01-01; the
conversion from and to the file's text happens once, in `recon.matching.io`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

INVOICE_COLUMNS = (
    "invoice_id",
    "invoice_num",
    "client_id",
    "client_name",
    "company_name",
    "issued_on",
    "due_on",
    "total",
    "balance",
    "currency",
    "status",
)
TRANSACTION_COLUMNS = (
    "transaction_id",
    "source",
    "account_id",
    "booked_on",
    "amount",
    "currency",
    "counterparty",
    "reference",
)
RECORDED_COLUMNS = (
    "whmcs_txn_id",
    "invoice_id",
    "recorded_on",
    "amount",
    "fees",
    "currency",
    "gateway",
    "transid",
)
PAYOUT_COLUMNS = ("payout_id", "source", "arrival_on", "amount", "currency", "status")
PAYOUT_LINE_COLUMNS = ("payout_id", "transaction_id")

ALLOCATION_COLUMNS = ("transaction_id", "invoice_id", "amount", "rule", "confidence", "decision")
EXCEPTION_COLUMNS = ("kind", "transaction_id", "invoice_id", "amount", "detail")

# columns with few distinct values: checked once per distinct value, read dictionary-encoded
CODED_COLUMNS = frozenset(
    {
        "source",
        "currency",
        "status",
        "gateway",
        "issued_on",
        "due_on",
        "booked_on",
        "recorded_on",
        "arrival_on",
        "total",
        "balance",
        "amount",
        "fees",
    }
)


INVOICE_STATUSES = ("Unpaid", "Payment Pending", "Collections", "Paid", "Cancelled", "Refunded")
OPEN_STATUSES = frozenset({"Unpaid", "Payment Pending", "Collections"})
EXTRA_STATUSES = ("Draft",)
SOURCES = ("bank", "stripe", "gocardless")

EXCEPTION_KINDS = (
    "unmatched_payment",
    "overpayment",
    "underpayment",
    "duplicate_payment",
    "closed_invoice",
    "currency_mismatch",
    "ambiguous",
    "payout_shortfall",
    "payout_missing",
    "payout_incomplete",
    "unbacked_payment",
    "refund",
    "dispute",
)

_STR = "str"


def _typed(columns: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            name: pd.Series(np.zeros(0, dtype=kind)) if kind != _STR else pd.Series([], dtype=_STR)
            for name, kind in columns.items()
        }
    )


INVOICE_TYPES: dict[str, Any] = {
    "invoice_id": np.int64,
    "invoice_num": _STR,
    "client_id": _STR,
    "client_name": _STR,
    "company_name": _STR,
    "issued_on": np.int32,
    "due_on": np.int32,
    "total": np.int64,
    "balance": np.int64,
    "currency": _STR,
    "status": _STR,
}
TRANSACTION_TYPES: dict[str, Any] = {
    "transaction_id": _STR,
    "source": _STR,
    "account_id": _STR,
    "booked_on": np.int32,
    "amount": np.int64,
    "currency": _STR,
    "counterparty": _STR,
    "reference": _STR,
}
RECORDED_TYPES: dict[str, Any] = {
    "whmcs_txn_id": _STR,
    "invoice_id": np.int64,
    "recorded_on": np.int32,
    "amount": np.int64,
    "fees": np.int64,
    "currency": _STR,
    "gateway": _STR,
    "transid": _STR,
}
PAYOUT_TYPES: dict[str, Any] = {
    "payout_id": _STR,
    "source": _STR,
    "arrival_on": np.int32,
    "amount": np.int64,
    "currency": _STR,
    "status": _STR,
}
PAYOUT_LINE_TYPES: dict[str, Any] = {"payout_id": _STR, "transaction_id": _STR}
JUDGED_TYPES: dict[str, Any] = {"kind": _STR, "subject": _STR}


def empty_transactions() -> pd.DataFrame:
    """A typed transactions frame with no rows."""
    return _typed(TRANSACTION_TYPES)


def empty_judged() -> pd.DataFrame:
    """A typed judged-subjects frame with no rows."""
    return _typed(JUDGED_TYPES)


def empty_recorded() -> pd.DataFrame:
    """A typed recorded-payments frame with no rows."""
    return _typed(RECORDED_TYPES)


def empty_payouts() -> pd.DataFrame:
    """A typed payouts frame with no rows."""
    return _typed(PAYOUT_TYPES)


def empty_payout_lines() -> pd.DataFrame:
    """A typed payout-lines frame with no rows."""
    return _typed(PAYOUT_LINE_TYPES)


@dataclass(frozen=True)
class MatchInputs:
    """Validated, typed inputs: money in minor units, dates as days since 1970-01-01.

    `invoices` may carry an optional `held` column (minor units): money allocations the engine
    does not see already hold on the invoice; it caps allocation, never scoring.

    `evidence` (optional, the columns of `transactions`): money outside the window that earlier
    runs decided. It is read only to judge payouts and WHMCS payments near the window's edges
    (the days the money covers, a payout's bank credit, a payment's transid); it is never
    allocated and no exception is raised about it.
    """

    invoices: pd.DataFrame
    transactions: pd.DataFrame
    recorded: pd.DataFrame = field(default_factory=empty_recorded)
    payouts: pd.DataFrame = field(default_factory=empty_payouts)
    payout_lines: pd.DataFrame = field(default_factory=empty_payout_lines)
    evidence: pd.DataFrame = field(default_factory=empty_transactions)


@dataclass(frozen=True)
class MatchResult:
    """What the engine decided.

    `allocations`: transaction_id, invoice_id, amount (minor), currency, rule, confidence, decision.
    `exceptions`: kind, transaction_id ("" if none), invoice_id (0 if none), amount (minor),
    currency, detail, subject (the payout id of payout-level kinds, the WHMCS payment id of
    `unbacked_payment`, "" where the payment and invoice say what it is about; not in
    exceptions.csv), rule and confidence (of the candidate a runner-up names, missing on other
    rows; not in exceptions.csv either). `payout_matches`: payout_id, transaction_id, amount,
    shortfall (minor).
    `judged`: kind, subject: each payout or WHMCS payment the engine had the money to judge
    for that kind of exception, raised or not (a stored one it no longer raises is closed).
    """

    allocations: pd.DataFrame
    exceptions: pd.DataFrame
    payout_matches: pd.DataFrame
    stats: dict[str, Any]
    timings: dict[str, float]
    judged: pd.DataFrame = field(default_factory=empty_judged)
