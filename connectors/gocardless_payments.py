"""GoCardless Payments API (direct debit) client on the shared HTTP policy: payments, payouts,
payout items, mandates and customers, read with cursor paging.

Every request carries `Authorization: Bearer <access token>` (registered for redaction) and
`GoCardless-Version: 2015-07-06`. Lists are read with `limit` (default 500, the API's maximum) and
`after=<meta.cursors.after>` until the cursor is null; a cursor that comes back twice is an error,
never an endless loop. Each raw page goes to `on_page` as a `connectors.pages.Page` before it is parsed.
Amounts of payments and payouts are already integer minor units; payout items' amounts are decimal
strings (shared/reference/providers.md §2.5).

`fetch_window` lands everything a reconciliation window needs in order: the payments charged in
the window, the payouts created in it, each payout's items (skipped with a warning when GoCardless
answers 410 Gone for payouts older than six months: the payments' `links.payout` still tie them),
and the mandates and customers that name the payers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from connectors.closing import Closing
from connectors.http import HttpPolicy, PolicyClient, ProviderRejectedError, ProviderResponseError
from connectors.pages import Page
from recon.redaction import register_secret

logger = logging.getLogger("recon.gocardless_payments")

PROVIDER = "GoCardless Payments"
API_VERSION = "2015-07-06"
DEFAULT_BASE_URL = "https://api.gocardless.com"
MAX_PAGE_SIZE = 500
MAX_PAGES = 10_000
RESOURCES = ("payments", "payouts", "payout_items", "mandates", "customers")

Window = tuple[dt.date, dt.date]
"""An inclusive `(first day, last day)` window."""

OnPage = Callable[[Page], None]


class GoCardlessPaymentsClient(Closing):
    """The Payments API over `PolicyClient`; a context manager that closes its connections."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        policy: HttpPolicy | None = None,
        version: str = API_VERSION,
        page_size: int = MAX_PAGE_SIZE,
        ca_cert: str | None = None,
    ) -> None:
        if not access_token:
            raise ValueError("GoCardless Payments needs an access token")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        register_secret(access_token)
        self.page_size = page_size
        self._http = PolicyClient(
            PROVIDER,
            policy,
            base_url=base_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {access_token}",
                "GoCardless-Version": version,
                "Accept": "application/json",
            },
            ca_cert=ca_cert,
        )

    # -- paging --------------------------------------------------------------------------------

    def iter_list(
        self,
        resource: str,
        params: Mapping[str, str] | None = None,
        *,
        on_page: OnPage | None = None,
    ) -> Iterator[Any]:
        """Every item of a list endpoint, following `meta.cursors.after` to the end."""
        if resource not in RESOURCES:
            raise ValueError(f"unknown GoCardless Payments list {resource!r}")
        query = {**(params or {}), "limit": str(self.page_size)}
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            response = self._http.request(
                "GET", f"/{resource}", params=query, expect_json=True, endpoint=resource
            )
            if on_page is not None:
                on_page(Page(resource, request_key(query), response.status_code, response.content))
            items, after = parse_list(response.content, resource)
            yield from items
            if after is None:
                return
            if after in seen:
                raise self._shape_error(resource, f"the cursor {after!r} came back twice")
            seen.add(after)
            query["after"] = after
        raise self._shape_error(resource, f"more than {MAX_PAGES} pages")

    def _shape_error(self, resource: str, detail: str) -> ProviderResponseError:
        return ProviderResponseError(
            provider=PROVIDER,
            method="GET",
            path=f"/{resource}",
            endpoint=resource,
            status=200,
            detail=detail,
        )

    # -- lists ---------------------------------------------------------------------------------

    def list_payments(self, window: Window, *, on_page: OnPage | None = None) -> list[Any]:
        """Payments whose charge date is in the window."""
        return list(self.iter_list("payments", payment_params(window), on_page=on_page))

    def list_payouts(self, window: Window, *, on_page: OnPage | None = None) -> list[Any]:
        """Payouts created in the window (GoCardless cannot filter payouts by arrival date)."""
        return list(self.iter_list("payouts", payout_params(window), on_page=on_page))

    def list_payout_items(self, payout_id: str, *, on_page: OnPage | None = None) -> list[Any]:
        """The items (payments paid out, fees) of one payout."""
        return list(self.iter_list("payout_items", {"payout": payout_id}, on_page=on_page))

    def list_mandates(self, *, on_page: OnPage | None = None) -> list[Any]:
        """Every mandate (they link payments to customers)."""
        return list(self.iter_list("mandates", on_page=on_page))

    def list_customers(self, *, on_page: OnPage | None = None) -> list[Any]:
        """Every customer (their names are the payers' names)."""
        return list(self.iter_list("customers", on_page=on_page))

    def fetch_window(self, window: Window, on_page: OnPage) -> None:
        """Land every page a window needs: payments, payouts, payout items, mandates, customers."""
        self.list_payments(window, on_page=on_page)
        for payout in self.list_payouts(window, on_page=on_page):
            payout_id = str(payout.get("id") or "") if isinstance(payout, dict) else ""
            if not payout_id:
                continue
            try:
                self.list_payout_items(payout_id, on_page=on_page)
            except ProviderRejectedError as exc:
                if exc.status != 410:
                    raise
                logger.warning(
                    "GoCardless no longer serves the items of payout %s (410 Gone); its payments "
                    "are tied to it by their links.payout",
                    payout_id,
                )
        self.list_mandates(on_page=on_page)
        self.list_customers(on_page=on_page)

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()


# -- pure helpers ----------------------------------------------------------------------------------


def request_key(params: Mapping[str, str]) -> str:
    """A stable key for a list request's parameters (no credentials are ever among them)."""
    return urlencode(sorted(params.items()))


def payment_params(window: Window) -> dict[str, str]:
    """The filter for payments charged in the window."""
    first, last = _checked(window)
    return {"charge_date[gte]": first.isoformat(), "charge_date[lte]": last.isoformat()}


def payout_params(window: Window) -> dict[str, str]:
    """The filter for payouts created in the window (UTC days)."""
    first, last = _checked(window)
    return {
        "created_at[gte]": f"{first.isoformat()}T00:00:00.000Z",
        "created_at[lt]": f"{(last + dt.timedelta(days=1)).isoformat()}T00:00:00.000Z",
    }


def _checked(window: Window) -> Window:
    first, last = window
    if first > last:
        raise ValueError(f"window starts {first} after it ends {last}")
    return first, last


def parse_list(body: bytes, resource: str) -> tuple[list[Any], str | None]:
    """The items of one list page (as sent, malformed ones too) and its `meta.cursors.after`
    (None on the last page)."""
    document = json.loads(body)
    items = document.get(resource) if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ProviderResponseError(
            provider=PROVIDER,
            method="GET",
            path=f"/{resource}",
            endpoint=resource,
            status=200,
            detail=f"the page has no {resource!r} list",
        )
    meta = document.get("meta")
    cursors = meta.get("cursors") if isinstance(meta, dict) else None
    after = cursors.get("after") if isinstance(cursors, dict) else None
    return items, (str(after) if after else None)
