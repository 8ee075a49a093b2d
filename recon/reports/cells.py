"""Canonical cells to what a format shows, and back: amounts as decimals in major units.

`parse_*` are the exact inverses of `render_*` for every value the writers produce, so `verify`
re-derives the canonical content from a file's own cells; anything else is a `CellError`.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from recon.money import MoneyError, format_amount, to_decimal, to_minor
from recon.reports.model import Cell, Column, Kind, Row

_INT = re.compile(r"^-?(0|[1-9][0-9]*)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class CellError(ValueError):
    """A cell that no writer of this report produces."""


def currencies(columns: tuple[Column, ...], row: Row) -> list[str | None]:
    """Each column's currency in `row` (None for columns that are not amounts)."""
    names = [c.name for c in columns]
    out: list[str | None] = []
    for column in columns:
        if column.kind is Kind.AMOUNT and column.currency in names:
            value = row[names.index(column.currency)]
            out.append(value if isinstance(value, str) and value else None)
        else:
            out.append(None)
    return out


def render_text(column: Column, value: Cell, currency: str | None) -> str:
    """A cell as CSV text: amounts as decimals (`-12.50`), None as an empty cell."""
    if value is None:
        return ""
    if column.kind is Kind.AMOUNT:
        if not isinstance(value, int) or currency is None:
            raise CellError(f"amount {value!r} in column {column.name} has no currency")
        return format_amount(value, currency)
    return str(value)


def parse_text(column: Column, raw: str, currency: str | None) -> Cell:
    """A CSV cell back to its canonical value."""
    if column.kind is Kind.TEXT:
        return raw
    if raw == "":
        return None
    if column.kind is Kind.INT:
        if not _INT.match(raw):
            raise CellError(f"{raw!r} in column {column.name} is not an integer")
        return int(raw)
    if column.kind is Kind.AMOUNT:
        return _minor(column, raw, currency)
    return _checked_date(column, raw)


def _is_decimal(raw: str) -> bool:
    return re.match(r"^-?\d+(\.\d+)?$", raw) is not None


def _minor(column: Column, value: str, currency: str | None) -> int:
    if currency is None or not _is_decimal(value):
        raise CellError(f"{value!r} in column {column.name} is not an amount")
    try:
        minor = to_minor(value, currency)
    except MoneyError as exc:
        raise CellError(f"{value!r} in column {column.name}: {exc}") from None
    if format_amount(minor, currency) != value:
        raise CellError(f"{value!r} in column {column.name} is not written as the report writes")
    return minor


def _checked_date(column: Column, raw: str) -> str:
    pattern = _DATE if column.kind is Kind.DATE else _STAMP
    if not pattern.match(raw):
        raise CellError(f"{raw!r} in column {column.name} is not an ISO date")
    return raw


def amount_decimal(value: int, currency: str) -> Decimal:
    """An amount as a Decimal in major units (what XLSX stores as a number)."""
    return to_decimal(value, currency)


def parse_number(column: Column, value: object, currency: str | None) -> int:
    """An XLSX numeric amount back to minor units.

    openpyxl reads numbers as int or float; the writer stored the exact decimal, and the
    shortest repr of the double read back is that decimal again, so it is parsed from its text
    (never used as a float) and must fit the currency exactly.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CellError(f"{value!r} in column {column.name} is not a number")
    if currency is None:
        raise CellError(f"amount in column {column.name} has no currency")
    try:
        return to_minor(Decimal(repr(value)), currency)
    except MoneyError as exc:
        raise CellError(f"{value!r} in column {column.name}: {exc}") from None


def parse_day(column: Column, value: object) -> str:
    """An XLSX date cell back to ISO."""
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    raise CellError(f"{value!r} in column {column.name} is not a date")
