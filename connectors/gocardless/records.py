"""One bank line as the bank sent it: what `read_record` makes of it, and the texts it names.

`read_record` reads the money, the dates, the transaction id, the reference and the counterparty
of one JSON record, noting every reason it cannot be used. The reference is gathered from every
field banks use (providers.md §1.9, `reference_of`); the counterparty is the other side of the
line (`counterparty_of`). `BankRecord` and `MalformedRecord` are what the parser hands back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from recon.money import MoneyError, normalise_currency, to_minor

REFERENCE_SEPARATOR = " | "

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class BankRecord:
    """One usable bank line: money in minor units, the reference as the bank sent it."""

    source_id: str
    status: str
    booked_on: dt.date
    value_on: dt.date | None
    amount_minor: int
    currency: str
    counterparty: str | None
    reference: str | None
    transaction_id: str | None
    record: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class MalformedRecord:
    """A line that cannot be loaded, with every reason and whatever could be read of it."""

    row_key: str
    reasons: tuple[str, ...]
    record: dict[str, Any]
    status: str
    booked_on: dt.date | None
    amount_minor: int | None
    currency: str | None


@dataclass
class Read:
    """What `read_record` could make of one record."""

    status: str
    position: int
    record: dict[str, Any]
    reasons: list[str]
    booked_on: dt.date | None = None
    value_on: dt.date | None = None
    amount_minor: int | None = None
    currency: str | None = None
    counterparty: str | None = None
    reference: str | None = None
    transaction_id: str | None = None


def read_record(item: Any, status: str, position: int) -> Read:
    """What can be read of `item`, the `position`-th line of the answer, with every reason not."""
    if not isinstance(item, dict):
        return Read(status, position, {"value": item}, ["record is not a JSON object"])
    read = Read(status, position, item, [])
    _read_money(read, item)
    _read_dates(read, item)
    tid = item.get("transactionId")
    read.transaction_id = str(tid) if isinstance(tid, str | int) and str(tid) else None
    read.reference = reference_of(item)
    read.counterparty = counterparty_of(item, credit=(read.amount_minor or 0) >= 0)
    return read


def _read_money(read: Read, item: Mapping[str, Any]) -> None:
    amount_object = item.get("transactionAmount")
    if not isinstance(amount_object, dict):
        read.reasons.append("transactionAmount missing")
        return
    amount = amount_object.get("amount")
    currency = amount_object.get("currency")
    if currency in (None, ""):
        read.reasons.append("currency missing")
    else:
        try:
            read.currency = normalise_currency(currency) if isinstance(currency, str) else None
        except MoneyError:
            read.currency = None
        if read.currency is None:
            read.reasons.append(f"currency {str(currency)!r} is not ISO 4217")
    if amount in (None, ""):
        read.reasons.append("amount missing")
        return
    if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        read.reasons.append(f"amount {amount!r} is not a decimal string")
        return
    if read.currency is None:
        return
    try:
        read.amount_minor = to_minor(amount, read.currency)
    except MoneyError:
        read.reasons.append(f"amount {str(amount)!r} is not a valid {read.currency} amount")


def _read_dates(read: Read, item: Mapping[str, Any]) -> None:
    found: dict[str, dt.date] = {}
    present = False
    for key in ("bookingDate", "bookingDateTime", "valueDate", "valueDateTime"):
        value = item.get(key)
        if value in (None, ""):
            continue
        present = True
        parsed = _iso_date(value, with_time=key.endswith("Time"))
        if parsed is None:
            read.reasons.append(f"{key} {str(value)!r} is not ISO")
        else:
            found[key] = parsed
    booking = found.get("bookingDate") or found.get("bookingDateTime")
    value_day = found.get("valueDate") or found.get("valueDateTime")
    read.value_on = value_day
    read.booked_on = booking or value_day
    if not present:
        read.reasons.append("date missing (no bookingDate, bookingDateTime or valueDate)")


def _iso_date(value: Any, *, with_time: bool) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        if with_time:
            return dt.datetime.fromisoformat(value).date()
        return dt.date.fromisoformat(value) if _ISO_DATE.match(value) else None
    except ValueError:
        return None


def _texts(value: Any) -> list[str]:
    """The text parts of a field that may be a string, an object or a list of either."""
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, dict):
        return _texts(value.get("reference"))
    if isinstance(value, list):
        return [part for item in value for part in _texts(item)]
    return []


def reference_of(record: Mapping[str, Any]) -> str | None:
    """Every reference text a bank may use, in providers.md §1.9 order, distinct, joined.

    Unstructured; the UnstructuredArray joined with spaces; Structured (string, or the Berlin Group
    object's `reference`); the StructuredArray; additionalInformation; endToEndId (unless
    `NOTPROVIDED`); entryReference. A single source is returned exactly as the bank sent it.
    """
    parts: list[str] = []
    parts += _texts(record.get("remittanceInformationUnstructured"))
    array = _texts(record.get("remittanceInformationUnstructuredArray"))
    if array:
        parts.append(" ".join(array))
    parts += _texts(record.get("remittanceInformationStructured"))
    parts += _texts(record.get("remittanceInformationStructuredArray"))
    parts += _texts(record.get("additionalInformation"))
    parts += [p for p in _texts(record.get("endToEndId")) if p.upper() != "NOTPROVIDED"]
    parts += _texts(record.get("entryReference"))
    distinct = list(dict.fromkeys(parts))
    return REFERENCE_SEPARATOR.join(distinct) if distinct else None


def counterparty_of(record: Mapping[str, Any], *, credit: bool) -> str | None:
    """The other party: the debtor of a credit, the creditor of a debit (else the other side)."""
    names = ("debtorName", "ultimateDebtor", "creditorName", "ultimateCreditor")
    if not credit:
        names = names[2:] + names[:2]
    for name in names:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
