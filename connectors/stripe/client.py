"""Stripe connector on the official `stripe` SDK: list a window's balance activity, land raw pages.

`StripeClient` drives `stripe.StripeClient` (pointed at `base_url` through `base_addresses`) with
the SDK's httpx transport, TLS verification always on and the policy's timeouts. The SDK's own
retry loop is switched off (`max_network_retries=0`): every call goes through this module's loop,
which applies the shared `HttpPolicy` (at most `max_attempts` attempts, jittered backoff,
`Retry-After`, the retry-time budget) and Stripe's `Stripe-Should-Retry` header (`false`: never
retry, `true`: retry), so one budget bounds every attempt. 429, 409, 5xx, connection failures,
timeouts and cut or invalid JSON bodies are retried (every call is a GET); other 4xx never are.
Failures end in the typed `ProviderError` family of `connectors.http` (see
`connectors.stripe.errors`); messages never carry the API key, which is registered for
redaction and never logged.

Paging is the SDK's own (`ListObject.next_page`: `starting_after` = the last id, GET the list's
`url`). Land raw first: each page's HTTP body, taken verbatim from the SDK's
`last_response.body` (the UTF-8 decoding of the bytes received, encoded back, which is exact),
goes to `on_page(connectors.pages.Page)` before anything in it is parsed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any, TypeVar, cast

import stripe
from stripe.params import (
    BalanceTransactionListParams,
    ChargeListParams,
    DisputeListParams,
    PayoutListParams,
    RefundListParams,
)

from connectors.closing import Closing
from connectors.http import HttpPolicy
from connectors.pages import Page
from connectors.stripe.errors import Call, classify, provider_error, shape_error
from connectors.stripe.wire import (
    DEFAULT_API_BASE,
    LIST_ENDPOINTS,
    MAX_PAGE_SIZE,
    RESOURCES,
    StripePageError,
    created_range,
    encode_params,
    parse_list_page,
    parse_object,
    record_ids,
)
from recon.errors import ConfigError
from recon.redaction import register_secret

logger = logging.getLogger("recon.stripe")

OnPage = Callable[[Page], None]
"""Receives every raw response page, in order, before it is parsed (see `tasks.land`)."""
T = TypeVar("T")


class StripeClient(Closing):
    """Reads a Stripe account through the official SDK; a context manager."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_API_BASE,
        policy: HttpPolicy | None = None,
        page_size: int = MAX_PAGE_SIZE,
        stripe_version: str | None = None,
    ) -> None:
        if not api_key:
            raise ConfigError("the Stripe secret API key is empty; set the tenant's Stripe key.")
        register_secret(api_key)
        self.policy = policy or HttpPolicy()
        self.page_size = page_size
        self.base_url = base_url.rstrip("/")
        self._transport = stripe.HTTPXClient(
            timeout=self.policy.timeout(), allow_sync_methods=True, verify_ssl_certs=True
        )
        self._sdk = stripe.StripeClient(
            api_key,
            base_addresses={"api": self.base_url},
            max_network_retries=0,  # retries are this module's, under the shared policy
            http_client=self._transport,
            stripe_version=stripe_version,
        )

    # -- lists ---------------------------------------------------------------------------------

    def list_balance_transactions(
        self,
        on_page: OnPage | None = None,
        *,
        created: Mapping[str, int] | None = None,
        payout: str | None = None,
        txn_type: str | None = None,
    ) -> list[Page]:
        """Every page of `/v1/balance_transactions` for a `created` range and/or a `payout`
        (and/or a Stripe `type`)."""
        params = self._params(created, payout=payout, type=txn_type)
        return self._list(
            "balance_transactions",
            params,
            lambda: self._sdk.v1.balance_transactions.list(
                cast(BalanceTransactionListParams, params)
            ),
            on_page,
        )

    def list_charges(
        self, on_page: OnPage | None = None, *, created: Mapping[str, int] | None = None
    ) -> list[Page]:
        """Every page of `/v1/charges` for a `created` range."""
        params = self._params(created)
        return self._list(
            "charges",
            params,
            lambda: self._sdk.v1.charges.list(cast(ChargeListParams, params)),
            on_page,
        )

    def list_refunds(
        self, on_page: OnPage | None = None, *, created: Mapping[str, int] | None = None
    ) -> list[Page]:
        """Every page of `/v1/refunds` for a `created` range."""
        params = self._params(created)
        return self._list(
            "refunds",
            params,
            lambda: self._sdk.v1.refunds.list(cast(RefundListParams, params)),
            on_page,
        )

    def list_disputes(
        self, on_page: OnPage | None = None, *, created: Mapping[str, int] | None = None
    ) -> list[Page]:
        """Every page of `/v1/disputes` for a `created` range."""
        params = self._params(created)
        return self._list(
            "disputes",
            params,
            lambda: self._sdk.v1.disputes.list(cast(DisputeListParams, params)),
            on_page,
        )

    def list_payouts(
        self, on_page: OnPage | None = None, *, created: Mapping[str, int] | None = None
    ) -> list[Page]:
        """Every page of `/v1/payouts` for a `created` range."""
        params = self._params(created)
        return self._list(
            "payouts",
            params,
            lambda: self._sdk.v1.payouts.list(cast(PayoutListParams, params)),
            on_page,
        )

    def retrieve(self, resource: str, object_id: str, on_page: OnPage | None = None) -> Page:
        """One object (`/v1/<resource>/<id>`), landed like a page."""
        services: dict[str, Callable[[str], stripe.StripeObject]] = {
            "balance_transactions": self._sdk.v1.balance_transactions.retrieve,
            "charges": self._sdk.v1.charges.retrieve,
            "refunds": self._sdk.v1.refunds.retrieve,
            "disputes": self._sdk.v1.disputes.retrieve,
            "payouts": self._sdk.v1.payouts.retrieve,
        }
        if resource not in services:
            raise ValueError(f"unknown Stripe resource {resource!r}")
        call = Call(f"/v1/{resource}/{object_id}", "", f"/v1/{resource}/{{id}}")
        found = self._send(call, lambda: services[resource](object_id))
        page = self._page(call, found, request_key=f"id={object_id}")
        if on_page is not None:
            on_page(page)
        try:
            parse_object(page.body)
        except StripePageError as exc:
            raise shape_error(call, exc) from None
        return page

    # -- a window ------------------------------------------------------------------------------

    def fetch_window(
        self, window_from: date, window_to: date, on_page: OnPage | None = None
    ) -> list[Page]:
        """Every page a window's reconciliation needs, in this order: the payouts created in it,
        the balance transactions of each automatic one (`payout=`; Stripe cannot list a manual
        payout's), the balance transactions, charges,
        refunds and disputes created in it, then each charge, refund or dispute that a balance
        transaction or refund names but no list held (retrieved by id)."""
        gte, lt = created_range(window_from, window_to)
        created = {"gte": gte, "lt": lt}
        pages: list[Page] = []

        def emit(page: Page) -> None:
            if on_page is not None:
                on_page(page)
            pages.append(page)

        payouts = self.list_payouts(emit, created=created)
        for payout_id in _automatic_payouts(payouts):
            self.list_balance_transactions(emit, payout=payout_id)
        self.list_balance_transactions(emit, created=created)
        self.list_charges(emit, created=created)
        self.list_refunds(emit, created=created)
        self.list_disputes(emit, created=created)
        self._retrieve_missing(pages, emit)
        return pages

    def _retrieve_missing(self, pages: list[Page], emit: OnPage) -> None:
        known: dict[str, set[str]] = {r: set() for r in RESOURCES}
        sources: set[str] = set()
        for page in pages:
            resource = LIST_ENDPOINTS.get(page.endpoint)
            if resource is None:
                continue
            records = parse_list_page(page.body).records
            known[resource].update(record_ids(records))
            if resource == "balance_transactions":
                sources.update(s for s in (r.get("source") for r in records) if isinstance(s, str))
        for prefix, resource in (("re_", "refunds"), ("dp_", "disputes")):
            for object_id in sorted(s for s in sources if s.startswith(prefix)):
                if object_id not in known[resource]:
                    emit(self.retrieve(resource, object_id))
                    known[resource].add(object_id)
        charges = {s for s in sources if s.startswith("ch_")}
        for page in pages:
            if page.endpoint in ("/v1/refunds", "/v1/disputes"):
                records = parse_list_page(page.body).records
            elif page.endpoint in ("/v1/refunds/{id}", "/v1/disputes/{id}"):
                records = [parse_object(page.body)]
            else:
                continue
            charges.update(c for c in (r.get("charge") for r in records) if isinstance(c, str))
        for charge_id in sorted(charges - known["charges"]):
            emit(self.retrieve("charges", charge_id))

    # -- machinery -----------------------------------------------------------------------------

    def _params(self, created: Mapping[str, int] | None, **filters: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": self.page_size}
        if created is not None:
            params["created"] = dict(created)
        params.update({k: v for k, v in filters.items() if v is not None})
        return params

    def _list(
        self,
        resource: str,
        params: dict[str, Any],
        first: Callable[[], stripe.ListObject[Any]],
        on_page: OnPage | None,
    ) -> list[Page]:
        path = f"/v1/{resource}"
        call = Call(path, encode_params(params), path)
        listing = self._send(call, first)
        pages: list[Page] = []
        while True:
            page = self._page(call, listing, request_key=call.request_key)
            if on_page is not None:
                on_page(page)  # landed before anything in it is parsed
            pages.append(page)
            try:
                parsed = parse_list_page(page.body)
            except StripePageError as exc:
                raise shape_error(call, exc) from None
            if not parsed.has_more:
                return pages
            cursor = parsed.records[-1]["id"]
            call = Call(path, encode_params({**params, "starting_after": cursor}), path)
            listing = self._send(call, listing.next_page)

    def _page(self, call: Call, obj: stripe.StripeObject, *, request_key: str) -> Page:
        response = obj.last_response
        if response is None:  # pragma: no cover - the SDK always sets it on API answers
            raise shape_error(call, StripePageError("the SDK kept no response body"))
        return Page(call.endpoint, request_key, response.code, response.body.encode("utf-8"))

    def _send(self, call: Call, send: Callable[[], T]) -> T:
        """One SDK call under the policy: retried while worth it, else a typed ProviderError."""
        policy = self.policy
        started = policy.clock()
        waited = 0.0
        while True:
            call.attempts += 1
            began = time.perf_counter()
            try:
                result = send()
            except stripe.StripeError as exc:
                failure = classify(exc)
            else:
                self._log(call, "200", began)
                return result
            self._log(call, failure.reason, began)
            if not failure.retryable or call.attempts >= policy.max_attempts:
                raise provider_error(call, failure) from None
            delay = (
                failure.retry_after
                if failure.retry_after is not None
                else policy.backoff(call.attempts)
            )
            spent = max(policy.clock() - started, waited)
            if spent + delay > policy.retry_budget:
                logger.warning(
                    "Stripe GET %s: giving up after %d attempt(s), the next wait of %.2f s "
                    "would exceed the retry budget of %.1f s",
                    call.shown,
                    call.attempts,
                    delay,
                    policy.retry_budget,
                )
                raise provider_error(call, failure) from None
            logger.warning(
                "Stripe GET %s: %s; retry %d/%d in %.2f s",
                call.shown,
                failure.reason,
                call.attempts,
                policy.max_attempts - 1,
                delay,
            )
            policy.sleep(delay)
            waited += delay

    def _log(self, call: Call, outcome: str, began: float) -> None:
        logger.info(
            "Stripe GET %s -> %s in %d ms (%s, attempt %d/%d)",
            call.shown,
            outcome,
            round((time.perf_counter() - began) * 1000),
            call.endpoint,
            call.attempts,
            self.policy.max_attempts,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._transport.close()  # type: ignore[no-untyped-call]  # the SDK leaves it untyped


def _automatic_payouts(pages: Iterable[Page]) -> list[str]:
    """Ids of the automatic payouts (Stripe filters balance transactions by those only)."""
    records = [r for page in pages for r in parse_list_page(page.body).records]
    return record_ids(r for r in records if r.get("automatic") is True)
