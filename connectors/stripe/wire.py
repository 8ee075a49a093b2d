"""Stripe's wire format: list pages, single objects, `created` windows and request keys.

Pure functions: a replay parses stored pages without any call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from recon.errors import ReconError

PROVIDER = "Stripe"
DEFAULT_API_BASE = "https://api.stripe.com"
MAX_PAGE_SIZE = 100
RESOURCES = ("balance_transactions", "charges", "refunds", "disputes", "payouts")
LIST_ENDPOINTS = {f"/v1/{r}": r for r in RESOURCES}
OBJECT_ENDPOINTS = {f"/v1/{r}/{{id}}": r for r in RESOURCES}

JSON = dict[str, Any]


class StripePageError(ReconError):
    """A page is not the shape Stripe sends (not JSON, not a list object, no ids to page by)."""


# -- pure parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListPage:
    """A Stripe list object: its records (raw dicts), `has_more` and `url`."""

    records: list[JSON]
    has_more: bool
    url: str


def parse_json(body: bytes) -> Any:
    """The JSON document of a body; StripePageError if it is not JSON."""
    try:
        return json.loads(body)
    except ValueError as exc:
        raise StripePageError(
            f"the body is not JSON ({type(exc).__name__} at byte {getattr(exc, 'pos', '?')} "
            f"of {len(body)})"
        ) from None


def parse_list_page(body: bytes) -> ListPage:
    """A list page: `{"object": "list", "data": [...], "has_more": bool, "url": "/v1/..."}`."""
    document = parse_json(body)
    if not isinstance(document, dict) or document.get("object") != "list":
        raise StripePageError("the body is not a Stripe list object")
    data, has_more, url = document.get("data"), document.get("has_more"), document.get("url")
    if not isinstance(data, list) or not isinstance(has_more, bool) or not isinstance(url, str):
        raise StripePageError("the list object lacks data, has_more or url")
    if any(not isinstance(r, dict) for r in data):
        raise StripePageError("the list's data holds something other than objects")
    if has_more and (not data or not isinstance(data[-1].get("id"), str)):
        raise StripePageError("the list says has_more but its last record has no id to page by")
    return ListPage([dict(r) for r in data], has_more, url)


def parse_object(body: bytes) -> JSON:
    """A single object (a retrieve answer)."""
    document = parse_json(body)
    if not isinstance(document, dict) or not isinstance(document.get("object"), str):
        raise StripePageError("the body is not a Stripe object")
    return dict(document)


def record_ids(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The string ids of raw records (a malformed record may still have one)."""
    return [r["id"] for r in records if isinstance(r.get("id"), str) and r["id"]]


def created_range(window_from: date, window_to: date) -> tuple[int, int]:
    """A window of UTC days as Stripe `created` bounds: `[gte, lt)` in unix seconds."""
    if window_to < window_from:
        raise ValueError(f"the window ends ({window_to}) before it starts ({window_from})")
    start = datetime(window_from.year, window_from.month, window_from.day, tzinfo=UTC)
    end = datetime(window_to.year, window_to.month, window_to.day, tzinfo=UTC) + timedelta(days=1)
    return int(start.timestamp()), int(end.timestamp())


def encode_params(params: Mapping[str, Any]) -> str:
    """Parameters in Stripe's form encoding (`created[gte]=1`), sorted: a page's request key."""
    pairs: list[tuple[str, str]] = []
    for key in sorted(params):
        value = params[key]
        if isinstance(value, Mapping):
            pairs += [(f"{key}[{k}]", str(value[k])) for k in sorted(value)]
        elif value is not None:
            pairs.append((key, str(value)))
    return "&".join(f"{quote(k, safe='[]')}={quote(v, safe='')}" for k, v in pairs)
