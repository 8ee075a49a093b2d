"""The canonical frames every connector normalises into and every load writes from.

Money is int64 minor units next to an ISO 4217 `currency`; dates are `datetime.date` objects;
ids are strings. One `Dataset` names a frame's columns, which of them form the natural key the
load upserts on, and the table it lands in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # the models load SQLAlchemy: a connector that normalises needs neither
    from recon.db.base import Base


@dataclass(frozen=True)
class Dataset:
    """A canonical frame: its columns, natural key and target table."""

    name: str
    model_name: str
    """The ORM class of the target table in `recon.db.models`."""
    columns: tuple[str, ...]
    key: tuple[str, ...]
    money: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    settled: tuple[str, str, str] | None = None
    """(column, settled value, earlier value): a row once settled is never set back."""

    @property
    def model(self) -> type[Base]:
        """The target table's ORM class (imported on first use)."""
        from recon.db import models

        model: type[Base] = getattr(models, self.model_name)
        return model

    def empty(self) -> pd.DataFrame:
        """A frame with this dataset's columns and no rows."""
        return pd.DataFrame({column: pd.Series(dtype=object) for column in self.columns})


TRANSACTIONS = Dataset(
    name="transactions",
    model_name="Transaction",
    columns=(
        "source",
        "account_ref",
        "source_id",
        "kind",
        "status",
        "booked_on",
        "value_on",
        "amount_minor",
        "fee_minor",
        "currency",
        "counterparty",
        "reference",
        "payout_id",
    ),
    key=("source", "account_ref", "source_id"),
    money=("amount_minor", "fee_minor"),
    dates=("booked_on", "value_on"),
    optional=("value_on", "counterparty", "reference", "payout_id"),
    settled=("status", "booked", "pending"),
)

STRIPE_TRANSACTIONS = Dataset(
    name=TRANSACTIONS.name,
    model_name="Transaction",
    columns=(*TRANSACTIONS.columns, "charge_id", "payment_intent"),
    key=TRANSACTIONS.key,
    money=TRANSACTIONS.money,
    dates=TRANSACTIONS.dates,
    optional=(*TRANSACTIONS.optional, "charge_id", "payment_intent"),
    settled=TRANSACTIONS.settled,
)
"""Stripe balance transactions (`source_id` is the `txn_...` id): TRANSACTIONS plus the charge
each one belongs to and that charge's payment intent (what WHMCS records as `transid`)."""

INVOICES = Dataset(
    name="invoices",
    model_name="Invoice",
    columns=(
        "invoice_id",
        "invoice_num",
        "client_id",
        "client_name",
        "company_name",
        "issued_on",
        "due_on",
        "total_minor",
        "balance_minor",
        "currency",
        "status",
    ),
    key=("invoice_id",),
    money=("total_minor", "balance_minor"),
    dates=("issued_on", "due_on"),
    optional=("invoice_num", "client_name", "company_name", "due_on"),
)

RECORDED = Dataset(
    name="recorded",
    model_name="RecordedPayment",
    columns=(
        "whmcs_txn_id",
        "invoice_id",
        "recorded_on",
        "amount_minor",
        "fees_minor",
        "currency",
        "gateway",
        "transid",
    ),
    key=("whmcs_txn_id",),
    money=("amount_minor", "fees_minor"),
    dates=("recorded_on",),
    optional=("invoice_id", "gateway", "transid"),
)

PAYOUTS = Dataset(
    name="payouts",
    model_name="Payout",
    columns=("source", "payout_id", "arrival_on", "amount_minor", "currency", "status"),
    key=("source", "payout_id"),
    money=("amount_minor",),
    dates=("arrival_on",),
)

PAYOUT_LINES = Dataset(
    name="payout_lines",
    model_name="PayoutLine",
    columns=("source", "payout_id", "transaction_id"),
    key=("source", "payout_id", "transaction_id"),
)

DATASETS: dict[str, Dataset] = {
    d.name: d for d in (TRANSACTIONS, INVOICES, RECORDED, PAYOUTS, PAYOUT_LINES)
}


def transaction_ref(source: str, account_ref: str, source_id: str) -> str:
    """The one string that names a transaction across runs: `source:account:source_id`."""
    return f"{source}:{account_ref}:{source_id}"


def split_transaction_ref(ref: str) -> tuple[str, str, str]:
    """The (source, account_ref, source_id) of a `transaction_ref`; ids may contain colons."""
    source, account_ref, source_id = ref.split(":", 2)
    return source, account_ref, source_id
