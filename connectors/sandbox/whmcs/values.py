"""Seed cells and request variables as WHMCS reads them; money as WHMCS writes it."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd

from connectors.sandbox.whmcs.model import CENT, WhmcsAPIError
from recon.money import MoneyError, to_minor


def seed_text(value: Any) -> str:
    """A seed cell as text (missing: empty)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def iso_date(value: Any) -> str:
    """A seed cell (date, datetime, Timestamp or text) as YYYY-MM-DD."""
    if isinstance(value, datetime | pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(str(value)[:10]).isoformat()


def seed_amount(value: Any, currency: str, what: str) -> Decimal:
    """A seed amount as WHMCS stores it (2 dp), checked exact for the currency."""
    try:
        to_minor(value, currency)
        decimal = Decimal(str(value).strip())
    except (MoneyError, InvalidOperation) as exc:
        raise ValueError(f"{what}: {exc}") from None
    if decimal != decimal.quantize(CENT):
        raise ValueError(f"{what}: WHMCS stores amounts with 2 decimals, not {value!r}")
    return decimal.quantize(CENT)


def money(value: Decimal) -> str:
    """An amount as WHMCS writes it: a 2-dp decimal string."""
    return f"{value.quantize(CENT):f}"


def int_param(value: str | None, default: int) -> int:
    """A request variable as an int, `default` when absent or not a number."""
    try:
        return int(str(value).strip()) if value not in (None, "") else default
    except ValueError:
        return default


def decimal_param(value: str, name: str) -> Decimal:
    """A request amount as a 2-dp Decimal; `Invalid <name>` otherwise."""
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise WhmcsAPIError(f"Invalid {name}") from None
    if not amount.is_finite():
        raise WhmcsAPIError(f"Invalid {name}")
    return amount.quantize(CENT)


def payment_date(value: str, now: Callable[[], datetime]) -> str:
    """A payment's date as WHMCS stores it (now when not given)."""
    text = value.strip()
    if not text:
        return now().strftime("%Y-%m-%d %H:%M:%S")
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
    raise WhmcsAPIError("Invalid Date Format")


def client_uuid(client_id: int) -> str:
    """The client's stable UUID."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"whmcs-sandbox/client/{client_id}"))
