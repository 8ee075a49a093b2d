"""Small helpers the fake providers share: route labels, constant-time compare, seed text."""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pandas as pd
from starlette.requests import Request


def label(name: str) -> Callable[[Request], Awaitable[str]]:
    """A `FaultPlan.wrap` label that names every request of one route `name`."""

    async def named(_request: Request) -> str:
        return name

    return named


def same(given: str, expected: str) -> bool:
    """Compare a presented secret with the expected one in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())


def cell_text(value: Any) -> str:
    """A seed frame's cell as stripped text; missing values (None, NA, NaT, NaN) are ``""``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value).strip()
