"""Reading seed cells, request fields and query dates; rendering timestamps."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from connectors.sandbox.gocardless.model import JSON, field_error


def b64(value: JSON) -> str:
    """Unpadded URL-safe base64 of compact JSON (a JWT segment)."""
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def stamp(when: datetime) -> str:
    """`2024-01-01T12:00:00.000000Z`, as the API writes timestamps."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def as_date(value: Any) -> date:
    """A seed cell (date, datetime, Timestamp or ISO text) as a date."""
    if isinstance(value, datetime | pd.Timestamp):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def int_field(body: Mapping[str, Any], name: str, default: int, errors: JSON) -> int | None:
    """The integer `body[name]`; records the API's error in `errors` when it is not one."""
    value = body.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        errors[name] = [f"A valid integer is required for {name}."]
        return None


def _date_error(name: str, summary: str, detail: str) -> Exception:
    return field_error(400, {name: {"summary": summary, "detail": detail}})


def query_date(params: Mapping[str, str], name: str, today: date) -> date | None:
    """The query parameter `name` as a date (None when absent); 400 as the API answers."""
    text = params.get(name)
    if not text:
        return None
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise _date_error(
            name,
            "Invalid date format",
            f"'{text}' is not a valid date. Use the YYYY-MM-DD format",
        ) from None
    if len(text) != 10:
        raise _date_error(name, "Invalid date format", f"'{text}' is not YYYY-MM-DD")
    if value > today:
        raise _date_error(
            name,
            "Date can't be in future",
            f"'{value}' can't be greater than {today}. Specify correct date range",
        )
    return value
