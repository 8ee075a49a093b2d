"""Ready-made record mutators for `FaultPlan.malform` on the Bank Account Data sandbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from connectors.sandbox.gocardless.model import JSON


def _drop_amount(record: JSON) -> None:
    amount = record.get("transactionAmount")
    if isinstance(amount, dict):
        amount.pop("amount", None)


def _bad_currency(record: JSON) -> None:
    amount = record.get("transactionAmount")
    if isinstance(amount, dict):
        amount["currency"] = "EURO"


def _non_iso_date(record: JSON) -> None:
    for key in ("bookingDate", "valueDate"):
        if isinstance(record.get(key), str):
            record[key] = date.fromisoformat(record[key]).strftime("%d/%m/%Y")


MALFORMATIONS: dict[str, Callable[[JSON], None]] = {
    "missing_amount": _drop_amount,
    "bad_currency": _bad_currency,
    "non_iso_date": _non_iso_date,
}
"""Record mutators for `FaultPlan.malform(..., records=("transactions", "booked"))`."""
