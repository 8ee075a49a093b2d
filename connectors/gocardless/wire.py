"""The Bank Account Data API's fixed points, and the small readers of its JSON bodies.

The provider's name and paths, the inclusive booking-date `Window`, `GoCardlessDataError` for a
body without the documented shape, and the helpers that read ids, texts and integers from it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from recon.errors import ReconError

PROVIDER = "GoCardless"
API = "/api/v2"
DEFAULT_BASE_URL = "https://bankaccountdata.gocardless.com"
DEFAULT_SCOPE = ("balances", "details", "transactions")

Window = tuple[dt.date, dt.date]
"""An inclusive `(date_from, date_to)` window of booking dates."""


class GoCardlessDataError(ReconError):
    """A Bank Account Data body does not have the documented shape."""


def segment(value: str) -> str:
    """`value` quoted as one path segment; an empty id is refused."""
    if not value:
        raise ValueError("an id must not be empty")
    return quote(value, safe="")


def body_object(body: Any, what: str) -> dict[str, Any]:
    """`body` when it is a JSON object, else `GoCardlessDataError` naming `what` it should be."""
    if not isinstance(body, dict):
        raise GoCardlessDataError(f"{PROVIDER} sent a {what} that is not a JSON object.")
    return body


def opt_text(value: Any) -> str | None:
    """`value` as text, or None when it is absent or empty."""
    return str(value) if value not in (None, "") else None


def int_or(value: Any, default: int) -> int:
    """`value` as an integer, or `default` when it is not one."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
