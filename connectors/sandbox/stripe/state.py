"""`StripeState`: the seeded account behind the API, its listing, paging and filters."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from connectors.sandbox.common import same
from connectors.sandbox.faults import FaultPlan
from connectors.sandbox.stripe.model import (
    COMMON_PARAMS,
    JSON,
    Collection,
    StripeAPIError,
    mask_key,
    missing,
    public,
)
from connectors.sandbox.stripe.query import (
    in_range,
    nested,
    page_limit,
    sort_key,
    text_param,
)
from connectors.sandbox.stripe.seed import SeedWorld


class StripeState:
    """In-memory Stripe account: seeded objects, derived balance transactions, key, faults."""

    def __init__(
        self,
        charges: pd.DataFrame,
        refunds: pd.DataFrame | None = None,
        disputes: pd.DataFrame | None = None,
        payouts: pd.DataFrame | None = None,
        *,
        api_key: str,
        faults: FaultPlan | None = None,
        account_id: str = "acct_1SandboxRecon00",
        now: datetime | int | None = None,
        should_retry: Mapping[int, str] | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("the Stripe sandbox needs a secret API key")
        self._api_key = api_key
        self.account_id = account_id
        self.faults = faults if faults is not None else FaultPlan()
        self.should_retry: dict[int, str] = dict(should_retry or {})
        self._lock = threading.Lock()
        self._requests = 0
        world = SeedWorld.build(charges, refunds, disputes, payouts, now)
        self._collections = world.collections()
        self._indexes = {name: c.index() for name, c in self._collections.items()}

    # -- views for tests -----------------------------------------------------------------------

    def objects(self, resource: str) -> list[JSON]:
        """Every object of a resource (`balance_transactions`, `charges`, ...) as served, newest
        first (deep copies)."""
        return [public(o) for o in self._collections[resource].items]

    def paid_out_in(self, payout_id: str) -> list[JSON]:
        """The balance transactions a `payout=` listing returns (the payout's own included)."""
        return [
            public(o)
            for o in self._collections["balance_transactions"].items
            if o.get("_payout") == payout_id
        ]

    # -- the API -------------------------------------------------------------------------------

    def authorise(self, authorization: str | None) -> None:
        """Raise 401 unless the header carries the account's secret key as a bearer token."""
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise StripeAPIError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
                "or we can help at https://support.stripe.com/.",
            )
        key = key.strip()
        if not same(key, self._api_key):
            raise StripeAPIError(401, f"Invalid API Key provided: {mask_key(key)}")

    def list(self, resource: str, params: Mapping[str, str]) -> JSON:
        """One page of a list endpoint, filtered and paged as Stripe does."""
        collection = self._collections[resource]
        query = nested(params)
        unknown = sorted(k for k in query if k not in COMMON_PARAMS | collection.filters)
        if unknown:
            raise StripeAPIError(400, f"Received unknown parameter: {unknown[0]}", param=unknown[0])
        limit = page_limit(query.get("limit"))
        items = [i for i in collection.items if self._matches(collection, i, query)]
        page, has_more = self._page(resource, items, query, limit)
        return {"object": "list", "data": page, "has_more": has_more, "url": collection.path}

    def _page(
        self, resource: str, items: Sequence[JSON], query: Mapping[str, Any], limit: int
    ) -> tuple[Sequence[JSON], bool]:
        """The page of `items` after (or before) the cursor, and whether more lie beyond it."""
        after, before = query.get("starting_after"), query.get("ending_before")
        if after is not None and before is not None:
            raise StripeAPIError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
            )
        if after is None and before is None:
            return items[:limit], len(items) > limit
        cursor_id = text_param(after if after is not None else before, "cursor")
        param = "starting_after" if after is not None else "ending_before"
        cursor = self._indexes[resource].get(cursor_id)
        if cursor is None:
            raise missing(self._collections[resource].object_name, cursor_id, param)
        key = sort_key(cursor)
        if after is not None:
            items = [i for i in items if sort_key(i) < key]
            return items[:limit], len(items) > limit
        items = [i for i in items if sort_key(i) > key]
        return items[-limit:], len(items) > limit

    def retrieve(self, resource: str, object_id: str) -> JSON:
        """One object by id, or 404 as Stripe answers it."""
        found = self._indexes[resource].get(object_id)
        if found is None:
            raise missing(self._collections[resource].object_name, object_id, "id")
        return found

    def next_request_id(self) -> str:
        """A deterministic `Request-Id`."""
        with self._lock:
            self._requests += 1
            number = self._requests
        return "req_" + hashlib.sha256(f"{self.account_id}/{number}".encode()).hexdigest()[:14]

    def _matches(self, collection: Collection, item: JSON, query: Mapping[str, Any]) -> bool:
        if "created" in query and not in_range(item["created"], query["created"], "created"):
            return False
        for name in collection.filters & query.keys():
            wanted = query[name]
            if name == "arrival_date":
                if not in_range(item["arrival_date"], wanted, name):
                    return False
            elif name == "payout":
                payout_id = text_param(wanted, name)
                paid = self._indexes["payouts"].get(payout_id)
                if paid is None:
                    raise missing("payout", payout_id, "payout")
                if not paid["automatic"]:
                    raise StripeAPIError(
                        400,
                        "Balance transaction history can only be filtered on automatic "
                        "transfers, not manual.",
                        param="payout",
                    )
                if item.get("_payout") != payout_id:
                    return False
            elif item.get(name) != text_param(wanted, name):
                return False
        return True
