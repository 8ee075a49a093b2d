"""Stripe connector on the official `stripe` SDK: list a window's balance activity, land raw pages.

`StripeClient` drives `stripe.StripeClient` (pointed at `base_url` through `base_addresses`) with
the SDK's httpx transport, TLS verification always on and the policy's timeouts. The SDK's own
retry loop is switched off (`max_network_retries=0`): every call goes through this module's loop,
which applies the shared `HttpPolicy` (at most `max_attempts` attempts, jittered backoff,
`Retry-After`, the retry-time budget) and Stripe's `Stripe-Should-Retry` header (`false`: never
retry, `true`: retry), so one budget bounds every attempt. 429, 409, 5xx, connection failures,
timeouts and cut or invalid JSON bodies are retried (every call is a GET); other 4xx never are.
Failures end in the typed `ProviderError` family of `connectors.http`; messages never carry the
API key, which is registered for redaction and never logged.

Paging is the SDK's own (`ListObject.next_page`: `starting_after` = the last id, GET the list's
`url`). Land raw first: each page's HTTP body, taken verbatim from the SDK's
`last_response.body` (the UTF-8 decoding of the bytes received, encoded back, which is exact),
goes to `on_page(connectors.pages.Page)` before this module parses anything in it.

The parse functions (`parse_list_page`, `parse_object`, `balance_transaction`, `charge`,
`refund`, `dispute`, `payout`) are pure: a replay parses stored pages without any call. A record
that cannot be put in canonical form comes back as `Malformed` with named reasons.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, cast
from urllib.parse import quote

import stripe
from stripe.params import (
    BalanceTransactionListParams,
    ChargeListParams,
    DisputeListParams,
    PayoutListParams,
    RefundListParams,
)

from connectors.closing import Closing
from connectors.http import (
    HttpPolicy,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderResponseError,
    ProviderUnavailableError,
    parse_retry_after,
)
from connectors.pages import Page
from recon.errors import ConfigError, ReconError
from recon.money import MoneyError, minor_exponent, normalise_currency
from recon.redaction import redact, register_secret

logger = logging.getLogger("recon.stripe")

PROVIDER = "Stripe"
DEFAULT_API_BASE = "https://api.stripe.com"
MAX_PAGE_SIZE = 100
RESOURCES = ("balance_transactions", "charges", "refunds", "disputes", "payouts")
LIST_ENDPOINTS = {f"/v1/{r}": r for r in RESOURCES}
OBJECT_ENDPOINTS = {f"/v1/{r}/{{id}}": r for r in RESOURCES}
INVOICE_METADATA_KEYS = ("invoice_id", "invoiceid", "invoice")
"""Charge metadata keys that carry the WHMCS invoice id, first match wins."""

# Stripe's own minor units differ from ISO 4217 for a few currencies (stripe.com/docs/currencies).
STRIPE_ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"}
    | {"PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
STRIPE_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

JSON = dict[str, Any]
OnPage = Callable[[Page], None]
"""Receives every raw response page, in order, before it is parsed (see `tasks.land`)."""
T = TypeVar("T")


class StripePageError(ReconError):
    """A page is not the shape Stripe sends (not JSON, not a list object, no ids to page by)."""


# -- pure parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListPage:
    """A Stripe list object: its records (raw dicts), `has_more` and `url`."""

    records: list[JSON]
    has_more: bool
    url: str


@dataclass(frozen=True)
class BalanceTransaction:
    """A balance transaction in canonical units: ISO minor units, upper-case ISO currency, UTC."""

    id: str
    type: str
    reporting_category: str | None
    source_id: str
    amount_minor: int
    fee_minor: int
    net_minor: int
    currency: str
    created: datetime
    available_on: date | None
    status: str
    description: str | None
    converted: bool


@dataclass(frozen=True)
class Charge:
    """The parts of a charge the reconciliation uses."""

    id: str
    created: datetime
    amount_minor: int
    currency: str
    description: str | None
    invoice_id: str | None
    customer_name: str | None
    balance_transaction: str | None
    status: str | None
    payment_intent: str | None = None


@dataclass(frozen=True)
class Refund:
    """A refund and the charge it refunds."""

    id: str
    charge_id: str
    created: datetime
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class Dispute:
    """A dispute and the charge it disputes."""

    id: str
    charge_id: str
    created: datetime
    amount_minor: int
    currency: str
    status: str | None


@dataclass(frozen=True)
class Payout:
    """A payout: what should arrive in the bank, and when."""

    id: str
    created: datetime
    arrival_on: date
    amount_minor: int
    currency: str
    status: str
    automatic: bool
    balance_transaction: str | None


@dataclass(frozen=True)
class Malformed:
    """A record that cannot be put in canonical form, with every reason, kept whole.

    `created`, `amount_minor` and `currency` are filled where the record has usable values, so
    a quarantined record still counts in the per-day, per-currency conservation sums.
    """

    object: str
    id: str | None
    reasons: tuple[str, ...]
    record: JSON
    created: datetime | None = None
    amount_minor: int | None = None
    currency: str | None = None


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


def iso_minor(amount: int, currency: str) -> int:
    """Stripe's minor units as ISO 4217 minor units (equal except for a few currencies).

    Raises MoneyError when the amount is not a whole number of ISO minor units.
    """
    stripe_exponent = (
        0 if currency in STRIPE_ZERO_DECIMAL else 3 if currency in STRIPE_THREE_DECIMAL else 2
    )
    shift = minor_exponent(currency) - stripe_exponent
    if shift >= 0:
        return int(amount * 10**shift)
    scaled, rest = divmod(amount, 10**-shift)
    if rest:
        raise MoneyError(f"{amount} is not a whole number of {currency} minor units")
    return int(scaled)


class _Reader:
    """Reads fields of one raw record, collecting a named reason for every unusable one."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = record
        self.reasons: list[str] = []

    def id(self, prefix: str) -> str | None:
        value = self.record.get("id")
        if not isinstance(value, str) or not value.startswith(prefix):
            self.reasons.append(f"id is missing or not a {prefix}… id")
            return None
        return value

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.record.get(name)
        if value is None or value == "":
            if required:
                self.reasons.append(f"{name} is missing")
            return None
        if not isinstance(value, str):
            self.reasons.append(f"{name} is not a string")
            return None
        return value

    def integer(self, name: str) -> int | None:
        if name not in self.record or self.record[name] is None:
            self.reasons.append(f"{name} is missing")
            return None
        value = self.record[name]
        if isinstance(value, bool) or not isinstance(value, int):
            self.reasons.append(f"{name} is not an integer: {value!r}")
            return None
        return value

    def currency(self) -> str | None:
        value = self.record.get("currency")
        if not isinstance(value, str) or not value:
            self.reasons.append("currency is missing")
            return None
        try:
            return normalise_currency(value)
        except MoneyError:
            self.reasons.append(f"currency {value!r} is not an ISO 4217 code")
            return None

    def money(self, name: str, currency: str | None) -> int | None:
        amount = self.integer(name)
        if amount is None or currency is None:
            return None
        try:
            return iso_minor(amount, currency)
        except MoneyError as exc:
            self.reasons.append(f"{name}: {exc}")
            return None

    def timestamp(self, name: str, *, required: bool = True) -> datetime | None:
        value = self.record.get(name)
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.reasons.append(f"{name} is missing or not a unix timestamp")
            return None
        return datetime.fromtimestamp(value, UTC)

    def malformed(
        self,
        object_name: str,
        *,
        created: datetime | None = None,
        amount_minor: int | None = None,
        currency: str | None = None,
    ) -> Malformed:
        raw_id = self.record.get("id")
        return Malformed(
            object_name,
            raw_id if isinstance(raw_id, str) and raw_id else None,
            tuple(self.reasons),
            dict(self.record),
            created,
            amount_minor,
            currency,
        )


def balance_transaction(record: Mapping[str, Any]) -> BalanceTransaction | Malformed:
    """A balance transaction record, checked (`net` must be `amount - fee`) and in ISO units."""
    r = _Reader(record)
    txn_id = r.id("txn_")
    type_ = r.text("type", required=True)
    currency = r.currency()
    raw_amount, raw_fee, raw_net = r.integer("amount"), r.integer("fee"), r.integer("net")
    if None not in (raw_amount, raw_fee, raw_net) and raw_net != cast(int, raw_amount) - cast(
        int, raw_fee
    ):
        r.reasons.append(f"net {raw_net} is not amount {raw_amount} minus fee {raw_fee}")
    amount = _converted(r, "amount", raw_amount, currency)
    fee = _converted(r, "fee", raw_fee, currency)
    net = _converted(r, "net", raw_net, currency)
    created = r.timestamp("created")
    available = r.timestamp("available_on", required=False)
    status = r.text("status") or "available"
    source = record.get("source")
    source_id = source.get("id") if isinstance(source, dict) else source
    if source_id is not None and not isinstance(source_id, str):
        r.reasons.append("source is not an id")
    if r.reasons:
        return r.malformed(
            "balance_transaction", created=created, amount_minor=amount, currency=currency
        )
    assert txn_id and type_ and currency and created is not None
    assert amount is not None and fee is not None and net is not None
    return BalanceTransaction(
        id=txn_id,
        type=type_,
        reporting_category=r.text("reporting_category"),
        source_id=source_id or txn_id,
        amount_minor=amount,
        fee_minor=fee,
        net_minor=net,
        currency=currency,
        created=created,
        available_on=available.date() if available is not None else None,
        status=status,
        description=r.text("description"),
        converted=record.get("exchange_rate") is not None,
    )


def _converted(r: _Reader, name: str, raw: int | None, currency: str | None) -> int | None:
    if raw is None or currency is None:
        return None
    try:
        return iso_minor(raw, currency)
    except MoneyError as exc:
        r.reasons.append(f"{name}: {exc}")
        return None


def charge(record: Mapping[str, Any]) -> Charge | Malformed:
    """A charge: amount, currency, description, the WHMCS invoice id in its metadata, payer."""
    r = _Reader(record)
    charge_id = r.id("ch_")
    created = r.timestamp("created")
    currency = r.currency()
    amount = r.money("amount", currency)
    description = r.text("description")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        r.reasons.append("metadata is not an object")
        metadata = {}
    invoice_id = next(
        (str(metadata[k]) for k in INVOICE_METADATA_KEYS if metadata.get(k) not in (None, "")),
        None,
    )
    billing = record.get("billing_details") or {}
    name = billing.get("name") if isinstance(billing, dict) else None
    bt = record.get("balance_transaction")
    bt_id = bt.get("id") if isinstance(bt, dict) else bt
    intent = record.get("payment_intent")
    intent_id = intent.get("id") if isinstance(intent, dict) else intent
    if r.reasons:
        return r.malformed("charge", created=created, amount_minor=amount, currency=currency)
    assert charge_id and created is not None and currency and amount is not None
    return Charge(
        id=charge_id,
        created=created,
        amount_minor=amount,
        currency=currency,
        description=description,
        invoice_id=invoice_id,
        customer_name=name if isinstance(name, str) and name else None,
        balance_transaction=bt_id if isinstance(bt_id, str) else None,
        status=r.text("status"),
        payment_intent=intent_id if isinstance(intent_id, str) and intent_id else None,
    )


def _charge_id(r: _Reader) -> str | None:
    value = r.record.get("charge")
    value = value.get("id") if isinstance(value, dict) else value
    if not isinstance(value, str) or not value.startswith("ch_"):
        r.reasons.append("charge is missing or not a ch_… id")
        return None
    return value


def refund(record: Mapping[str, Any]) -> Refund | Malformed:
    """A refund and the charge it belongs to."""
    r = _Reader(record)
    refund_id = r.id("re_")
    charge_id = _charge_id(r)
    created = r.timestamp("created")
    currency = r.currency()
    amount = r.money("amount", currency)
    if r.reasons:
        return r.malformed("refund", created=created, amount_minor=amount, currency=currency)
    assert refund_id and charge_id and created is not None and currency and amount is not None
    return Refund(refund_id, charge_id, created, amount, currency)


def dispute(record: Mapping[str, Any]) -> Dispute | Malformed:
    """A dispute and the charge it belongs to."""
    r = _Reader(record)
    dispute_id = r.id("dp_")
    charge_id = _charge_id(r)
    created = r.timestamp("created")
    currency = r.currency()
    amount = r.money("amount", currency)
    if r.reasons:
        return r.malformed("dispute", created=created, amount_minor=amount, currency=currency)
    assert dispute_id and charge_id and created is not None and currency and amount is not None
    return Dispute(dispute_id, charge_id, created, amount, currency, r.text("status"))


def payout(record: Mapping[str, Any]) -> Payout | Malformed:
    """A payout: amount, currency, status and the UTC day it arrives."""
    r = _Reader(record)
    payout_id = r.id("po_")
    created = r.timestamp("created")
    arrival = r.timestamp("arrival_date")
    currency = r.currency()
    amount = r.money("amount", currency)
    status = r.text("status", required=True)
    if r.reasons:
        return r.malformed(
            "payout",
            created=arrival,  # a payout's day is its arrival day
            amount_minor=amount,
            currency=currency,
        )
    assert payout_id and created is not None and arrival is not None
    assert currency and amount is not None and status
    bt = record.get("balance_transaction")
    return Payout(
        id=payout_id,
        created=created,
        arrival_on=arrival.date(),
        amount_minor=amount,
        currency=currency,
        status=status,
        automatic=record.get("automatic") is True,
        balance_transaction=bt if isinstance(bt, str) else None,
    )


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


# -- the client ----------------------------------------------------------------------------------------


@dataclass
class _Failure:
    kind: str  # "status" | "transport" | "body"
    reason: str
    status: int | None = None
    retryable: bool = True
    retry_after: float | None = None
    message: str = ""


@dataclass
class _Call:
    path: str
    request_key: str
    endpoint: str
    attempts: int = field(default=0)

    @property
    def shown(self) -> str:
        return redact(f"{self.path}?{self.request_key}" if self.request_key else self.path)


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
        call = _Call(f"/v1/{resource}/{object_id}", "", f"/v1/{resource}/{{id}}")
        found = self._send(call, lambda: services[resource](object_id))
        page = self._page(call, found, request_key=f"id={object_id}")
        if on_page is not None:
            on_page(page)
        try:
            parse_object(page.body)
        except StripePageError as exc:
            raise self._shape_error(call, exc) from None
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
        call = _Call(path, encode_params(params), path)
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
                raise self._shape_error(call, exc) from None
            if not parsed.has_more:
                return pages
            cursor = parsed.records[-1]["id"]
            call = _Call(path, encode_params({**params, "starting_after": cursor}), path)
            listing = self._send(call, listing.next_page)

    def _page(self, call: _Call, obj: stripe.StripeObject, *, request_key: str) -> Page:
        response = obj.last_response
        if response is None:  # pragma: no cover - the SDK always sets it on API answers
            raise self._shape_error(call, StripePageError("the SDK kept no response body"))
        return Page(call.endpoint, request_key, response.code, response.body.encode("utf-8"))

    def _shape_error(self, call: _Call, exc: StripePageError) -> ProviderResponseError:
        return ProviderResponseError(
            provider=PROVIDER,
            method="GET",
            path=call.path,
            endpoint=call.endpoint,
            status=200,
            detail=str(exc),
            attempts=max(call.attempts, 1),
        )

    def _send(self, call: _Call, send: Callable[[], T]) -> T:
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
                failure = _classify(exc)
            else:
                self._log(call, "200", began)
                return result
            self._log(call, failure.reason, began)
            if not failure.retryable or call.attempts >= policy.max_attempts:
                raise self._error(call, failure) from None
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
                raise self._error(call, failure) from None
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

    def _log(self, call: _Call, outcome: str, began: float) -> None:
        logger.info(
            "Stripe GET %s -> %s in %d ms (%s, attempt %d/%d)",
            call.shown,
            outcome,
            round((time.perf_counter() - began) * 1000),
            call.endpoint,
            call.attempts,
            self.policy.max_attempts,
        )

    def _error(self, call: _Call, failure: _Failure) -> ProviderError:
        common: dict[str, Any] = {
            "provider": PROVIDER,
            "method": "GET",
            "path": call.path,
            "endpoint": call.endpoint,
        }
        if failure.kind == "body":
            return ProviderResponseError(
                **common, status=failure.status, detail=failure.reason, attempts=call.attempts
            )
        if failure.status == 429:
            return ProviderRateLimitedError(
                **common, attempts=call.attempts, retry_after=failure.retry_after
            )
        if failure.status is not None and 400 <= failure.status < 500 and failure.status != 409:
            return ProviderRejectedError(
                **common,
                status=failure.status,
                provider_message=failure.message,
                attempts=call.attempts,
            )
        return ProviderUnavailableError(
            **common, attempts=call.attempts, status=failure.status, reason=failure.reason
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._transport.close()  # type: ignore[no-untyped-call]  # the SDK leaves it untyped


def _automatic_payouts(pages: Iterable[Page]) -> list[str]:
    """Ids of the automatic payouts (Stripe filters balance transactions by those only)."""
    records = [r for page in pages for r in parse_list_page(page.body).records]
    return record_ids(r for r in records if r.get("automatic") is True)


_TRANSPORT_REASONS = (
    ("ConnectTimeout", "connect timeout"),
    ("ReadTimeout", "read timeout"),
    ("WriteTimeout", "write timeout"),
    ("PoolTimeout", "connection pool timeout"),
    ("ConnectError", "connection failed"),
    ("RemoteProtocolError", "connection closed mid-response"),
    ("ReadError", "connection dropped while reading"),
)


def _classify(exc: stripe.StripeError) -> _Failure:
    """Why an SDK call failed and whether it is worth another attempt (every call is a GET)."""
    if isinstance(exc, stripe.APIConnectionError):
        cause = exc.__cause__
        if _tls_failure(exc):
            return _Failure("transport", "TLS certificate verification failed", retryable=False)
        name = type(cause).__name__ if cause is not None else ""
        reason = next((text for key, text in _TRANSPORT_REASONS if key == name), name or "network")
        return _Failure("transport", reason, retryable=True)
    status = exc.http_status
    if status is None:
        return _Failure("body", "unusable answer", retryable=False, message=exc.user_message or "")
    if 200 <= status < 300:  # the SDK could not decode the body of a success
        return _Failure("body", "invalid JSON body", status=status, retryable=True)
    advice = _header(exc.headers, "stripe-should-retry")
    retryable = status in (409, 429) or status >= 500
    if advice == "true":
        retryable = True
    elif advice == "false":
        retryable = False
    retry_after = (
        parse_retry_after(_header(exc.headers, "retry-after")) if status in (429, 503) else None
    )
    return _Failure(
        "status",
        f"HTTP {status}",
        status=status,
        retryable=retryable,
        retry_after=retry_after,
        message=exc.user_message or "",
    )


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value).strip().lower() if name == "stripe-should-retry" else str(value)
    return None


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(
            seen
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
