"""Reading seed frames and cells: ids, integers of minor units, unix times, dates."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd

from connectors.sandbox.stripe.model import stripe_amount


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {name} frame lacks columns {', '.join(missing)}")


def seed_rows(
    frame: pd.DataFrame | None, columns: Sequence[str], name: str
) -> list[dict[str, Any]]:
    """The frame's rows (none for no frame), after checking its columns."""
    if frame is None:
        return []
    _require(frame, columns, name)
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def unique_id(object_id: str, prefix: str, seen: set[str]) -> None:
    """Check an id has the object's prefix and is not seeded twice."""
    if not object_id.startswith(prefix):
        raise ValueError(f"{object_id!r} is not a Stripe id starting with {prefix!r}")
    if object_id in seen:
        raise ValueError(f"{object_id} appears twice in the seed")
    seen.add(object_id)


def is_missing(value: Any) -> bool:
    """Whether a seed cell is empty (None, NaT, NaN)."""
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def optional_text(value: Any) -> str | None:
    """A seed cell as text, None when empty."""
    return None if is_missing(value) or str(value) == "" else str(value)


def as_int(value: Any, what: str) -> int:
    """A seed cell as an integer of minor units."""
    if isinstance(value, bool) or is_missing(value):
        raise ValueError(f"{what} must be an integer number of minor units")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{what} must be an integer number of minor units, not {value}")
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an integer number of minor units") from None


def money(row: Mapping[str, Any], currency: str, what: str) -> int:
    """The row's `amount_minor` in Stripe's units of `currency`."""
    return stripe_amount(as_int(row["amount_minor"], f"{what} amount_minor"), currency)


def unix(value: Any, what: str) -> int:
    """A seed time (tz-aware datetime or unix seconds) as unix seconds."""
    if isinstance(value, bool) or is_missing(value):
        raise ValueError(f"{what} is missing")
    if isinstance(value, datetime):  # pd.Timestamp is a datetime
        if value.tzinfo is None:
            raise ValueError(f"{what} must be timezone-aware, not {value}")
        return int(value.timestamp())
    if isinstance(value, int) or (hasattr(value, "item") and isinstance(value.item(), int)):
        return int(value)
    raise ValueError(f"{what} must be a tz-aware datetime or unix seconds, not {value!r}")


def as_date(value: Any, what: str) -> date:
    """A seed cell as a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError(f"{what} must be a date, not {value!r}") from None
