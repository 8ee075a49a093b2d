"""A fake GoCardless Payments API (direct debit, "GoCardless Pro"): payments, payouts, payout
items, mandates and customers, read-only, on the wire format of shared/reference/providers.md §2.

The real API has no path prefix (`https://api.gocardless.com/payments`). The sandbox shares one
host with the other fake providers, so `routes(state, prefix=...)` mounts it under a configurable
prefix, `/gocardless-payments` by default; point the client's base URL at
`<sandbox>/gocardless-payments` (a prefix of `""` serves the real root paths).

Every request needs `Authorization: Bearer <access token>` and a `GoCardless-Version` header the
sandbox knows (`2015-07-06`); errors use the real envelope `{"error": {"message", "type", "code",
"errors": [{"reason", "message"}], "documentation_url", "request_id"}}`. The reasons used here
(`missing_authorization_header`, `access_token_not_found`, `missing_version_header`,
`version_not_found`, `invalid_cursor`, `validation_failed`) follow GoCardless's naming; the exact
set is not confirmed by providers.md.

Lists page with opaque cursors: `?limit=` (default 50, at most 500), `?after=` / `?before=`, and
`meta: {"cursors": {"before", "after"}, "limit"}` where `after` is null on the last page. Filters:
`created_at[gt|gte|lt|lte]` everywhere, `charge_date[gt|gte|lt|lte]`, `status`, `currency` on
payments, `status`, `currency` on payouts, `customer` on mandates; `payout_items` requires `payout`
and answers 410 Gone for payouts created more than six months ago, as documented. Amounts are
integer minor units, except payout items' `amount`, a decimal string in major units (`"45.0"`).

Seed frames: payments `PAYMENT_COLUMNS`, payouts `PAYOUT_COLUMNS` (optional `created_at`, default
the day before arrival at 09:00 UTC). A payout must equal its payments less `deducted_fees`.
Customers and mandates are derived from `customer_name` (one mandate per customer).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime
from typing import Any

import pandas as pd
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connectors.sandbox.common import cell_text, label
from connectors.sandbox.faults import FaultPlan
from recon.money import normalise_currency, to_decimal

JSON = dict[str, Any]
Clock = Callable[[], datetime]
PREFIX = "/gocardless-payments"
API_VERSION = "2015-07-06"
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
RATE_LIMIT_PER_MINUTE = 1000
PAYOUT_ITEMS_MAX_AGE = timedelta(days=183)
PAYMENT_COLUMNS = (
    "payment_id",
    "created_at",
    "charge_date",
    "amount_minor",
    "currency",
    "description",
    "reference",
    "status",
    "payout_id",
    "customer_name",
)
PAYOUT_COLUMNS = (
    "payout_id",
    "arrival_date",
    "amount_minor",
    "deducted_fees",
    "currency",
    "status",
)
PAYMENT_STATUSES = frozenset(
    {
        "pending_customer_approval",
        "pending_submission",
        "submitted",
        "confirmed",
        "paid_out",
        "cancelled",
        "customer_approval_denied",
        "failed",
        "charged_back",
    }
)
PAYOUT_STATUSES = frozenset({"pending", "paid", "bounced"})
_SCHEMES = {"GBP": "bacs", "EUR": "sepa_core", "SEK": "autogiro", "DKK": "betalingsservice"}
_RANGE_OPS = ("gt", "gte", "lt", "lte")


class PaymentsAPIError(Exception):
    """An error answer in GoCardless's envelope."""

    def __init__(self, status: int, kind: str, reason: str, message: str, **extra: Any) -> None:
        super().__init__(status, reason)
        self.status = status
        self.body: JSON = {
            "error": {
                "message": message,
                "documentation_url": f"https://developer.gocardless.com/api-reference#{reason}",
                "type": kind,
                "request_id": str(uuid.uuid4()),
                "code": status,
                "errors": [{"reason": reason, "message": message, **extra}],
            }
        }


@dataclass(frozen=True)
class _Resource:
    """One list endpoint: its items in list order and the filters it accepts."""

    items: list[JSON]
    date_filters: tuple[str, ...] = ("created_at",)
    exact_filters: tuple[str, ...] = ()


class GoCardlessPaymentsState:
    """In-memory GoCardless Payments data for one creditor; thread-safe, read-only."""

    def __init__(
        self,
        payments: pd.DataFrame,
        payouts: pd.DataFrame,
        *,
        access_token: str,
        creditor_id: str = "CR000SANDBOX01",
        faults: FaultPlan | None = None,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        if not access_token:
            raise ValueError("the sandbox needs an access token")
        self._access_token = access_token
        self.creditor_id = creditor_id
        self.faults = faults if faults is not None else FaultPlan()
        self._clock = clock
        self._lock = threading.Lock()
        self._minute: dict[int, int] = {}
        self._resources = _seed(payments, payouts, creditor_id)

    # -- auth and headers ------------------------------------------------------------------------

    def authorise(self, headers: Mapping[str, str]) -> None:
        """Check the bearer token and the `GoCardless-Version` header."""
        authorization = headers.get("authorization")
        if not authorization:
            raise PaymentsAPIError(
                401,
                "invalid_api_usage",
                "missing_authorization_header",
                "Authorization header is missing",
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self._access_token.encode()
        ):
            raise PaymentsAPIError(
                401, "invalid_api_usage", "access_token_not_found", "Access token not found"
            )
        version = headers.get("gocardless-version")
        if not version:
            raise PaymentsAPIError(
                400,
                "invalid_api_usage",
                "missing_version_header",
                "GoCardless-Version header is required",
            )
        if version != API_VERSION:
            raise PaymentsAPIError(
                400,
                "invalid_api_usage",
                "version_not_found",
                f"Version {version} not found. Use a version such as {API_VERSION}.",
            )

    def rate_headers(self) -> dict[str, str]:
        """`RateLimit-*` headers; the sandbox reports its per-minute budget, never enforces it."""
        now = self._clock()
        minute = int(now.timestamp()) // 60
        with self._lock:
            self._minute[minute] = self._minute.get(minute, 0) + 1
            used = self._minute[minute]
        reset = datetime.fromtimestamp((minute + 1) * 60, UTC)
        return {
            "RateLimit-Limit": str(RATE_LIMIT_PER_MINUTE),
            "RateLimit-Remaining": str(max(RATE_LIMIT_PER_MINUTE - used, 0)),
            "RateLimit-Reset": format_datetime(reset, usegmt=True),
        }

    # -- reads -----------------------------------------------------------------------------------

    def list(self, resource: str, params: Mapping[str, str]) -> JSON:
        """One page of `resource` (`payments`, `payouts`, `mandates`, `customers`)."""
        spec = self._resources[resource]
        items = [i for i in spec.items if _matches(i, spec, params)]
        return _page(resource, items, params)

    def get(self, resource: str, item_id: str) -> JSON:
        """One item by id (`GET /payments/{id}`...)."""
        found = next((i for i in self._resources[resource].items if i["id"] == item_id), None)
        if found is None:
            raise PaymentsAPIError(
                404, "invalid_api_usage", "resource_not_found", f"Resource '{item_id}' not found"
            )
        return {resource: found}

    def payout_items(self, params: Mapping[str, str]) -> JSON:
        """One page of a payout's items; `payout` is required."""
        payout_id = params.get("payout")
        if not payout_id:
            raise PaymentsAPIError(
                422,
                "validation_failed",
                "validation_failed",
                "Validation failed",
                field="payout",
                request_pointer="/payout_items/payout",
            )
        payout = next((p for p in self._resources["payouts"].items if p["id"] == payout_id), None)
        if payout is None:
            raise PaymentsAPIError(
                404, "invalid_api_usage", "resource_not_found", f"Resource '{payout_id}' not found"
            )
        if _when(payout["created_at"]) < self._clock() - PAYOUT_ITEMS_MAX_AGE:
            raise PaymentsAPIError(
                410,
                "invalid_api_usage",
                "gone",
                "This endpoint only serves requests for payouts created in the last 6 months.",
            )
        return _page("payout_items", _items_of(payout, self._resources["payments"].items), params)


# -- seeding ---------------------------------------------------------------------------------------


def _seed(payments: pd.DataFrame, payouts: pd.DataFrame, creditor: str) -> dict[str, _Resource]:
    _require(payments, PAYMENT_COLUMNS, "payments")
    _require(payouts, PAYOUT_COLUMNS, "payouts")
    customers: dict[str, JSON] = {}
    mandates: dict[str, JSON] = {}
    payment_items: list[JSON] = []
    for row in payments.to_dict("records"):
        payment_id = cell_text(row["payment_id"])
        currency = normalise_currency(cell_text(row["currency"]))
        status = cell_text(row["status"])
        if status not in PAYMENT_STATUSES:
            raise ValueError(f"payment {payment_id} has unknown status {status!r}")
        created = _stamp(row["created_at"])
        name = cell_text(row["customer_name"]) or "Unknown Customer"
        customer = customers.setdefault(name, _customer(name, created))
        mandate = mandates.setdefault(name, _mandate(customer, creditor, currency, created))
        links: JSON = {"mandate": mandate["id"], "creditor": creditor}
        payout_id = cell_text(row["payout_id"])
        if payout_id:
            if status != "paid_out":
                raise ValueError(f"payment {payment_id} is in payout {payout_id} but {status}")
            links["payout"] = payout_id
        payment_items.append(
            {
                "id": payment_id,
                "created_at": created,
                "charge_date": _day(row["charge_date"]),
                "amount": _minor(row["amount_minor"], f"payment {payment_id} amount_minor"),
                "amount_refunded": 0,
                "currency": currency,
                "description": cell_text(row["description"]) or None,
                "reference": cell_text(row["reference"]) or None,
                "status": status,
                "scheme": _SCHEMES.get(currency, "faster_payments"),
                "retry_if_possible": False,
                "metadata": {},
                "fx": {
                    "fx_currency": None,
                    "fx_amount": None,
                    "exchange_rate": None,
                    "estimated_exchange_rate": None,
                },
                "links": links,
            }
        )
    if len({p["id"] for p in payment_items}) != len(payment_items):
        raise ValueError("payment ids must be unique")
    payout_items = [_payout(row, creditor) for row in payouts.to_dict("records")]
    _check_payouts(payout_items, payment_items)
    order = lambda item: (item["created_at"], item["id"])  # noqa: E731
    return {
        "payments": _Resource(
            sorted(payment_items, key=order),
            date_filters=("created_at", "charge_date"),
            exact_filters=("status", "currency"),
        ),
        "payouts": _Resource(
            sorted(payout_items, key=order), exact_filters=("status", "currency", "reference")
        ),
        "mandates": _Resource(sorted(mandates.values(), key=order), exact_filters=("customer",)),
        "customers": _Resource(sorted(customers.values(), key=order)),
    }


def _payout(row: Mapping[Any, Any], creditor: str) -> JSON:
    payout_id = cell_text(row["payout_id"])
    status = cell_text(row["status"])
    if status not in PAYOUT_STATUSES:
        raise ValueError(f"payout {payout_id} has unknown status {status!r}")
    arrival = _day(row["arrival_date"])
    created_value = row.get("created_at")
    created = (
        _stamp(created_value)
        if cell_text(created_value)
        else _stamp(datetime.combine(date.fromisoformat(arrival) - timedelta(days=1), time(9), UTC))
    )
    currency = normalise_currency(cell_text(row["currency"]))
    return {
        "id": payout_id,
        "amount": _minor(row["amount_minor"], f"payout {payout_id} amount_minor"),
        "arrival_date": arrival,
        "created_at": created,
        "currency": currency,
        "deducted_fees": _minor(row["deducted_fees"], f"payout {payout_id} deducted_fees"),
        "fx": {
            "fx_currency": currency,
            "fx_amount": None,
            "exchange_rate": None,
            "estimated_exchange_rate": None,
        },
        "links": {"creditor": creditor, "creditor_bank_account": f"BA{_short(creditor)}"},
        "metadata": {},
        "payout_type": "merchant",
        "reference": f"GC-{payout_id}",
        "status": status,
        "tax_currency": None,
    }


def _check_payouts(payouts: list[JSON], payments: list[JSON]) -> None:
    known = {p["id"]: p for p in payouts}
    for payment in payments:
        payout_id = payment["links"].get("payout")
        if payout_id and payout_id not in known:
            raise ValueError(f"payment {payment['id']} is in unknown payout {payout_id}")
    for payout in payouts:
        mine = [p for p in payments if p["links"].get("payout") == payout["id"]]
        if any(p["currency"] != payout["currency"] for p in mine):
            raise ValueError(f"payout {payout['id']} mixes currencies")
        expected = sum(p["amount"] for p in mine) - payout["deducted_fees"]
        if payout["amount"] != expected:
            raise ValueError(
                f"payout {payout['id']} is {payout['amount']} but its payments less fees are "
                f"{expected}; GoCardless pays out exactly that"
            )


def _items_of(payout: JSON, payments: list[JSON]) -> list[JSON]:
    """A payout's items: one `payment_paid_out` per payment and its fees as one negative item."""
    mine = [p for p in payments if p["links"].get("payout") == payout["id"]]
    items = [
        {
            "amount": _major(p["amount"], p["currency"]),
            "links": {"payment": p["id"], "mandate": p["links"]["mandate"]},
            "taxes": [],
            "type": "payment_paid_out",
        }
        for p in mine
    ]
    if payout["deducted_fees"] and mine:
        items.append(
            {
                "amount": _major(-payout["deducted_fees"], payout["currency"]),
                "links": {"payment": mine[0]["id"]},
                "taxes": [],
                "type": "gocardless_fee",
            }
        )
    return items


def _customer(name: str, created: str) -> JSON:
    given, _, family = name.partition(" ")
    return {
        "id": f"CU{_short(name)}",
        "created_at": created,
        "email": f"{_short(name).lower()}@example.invalid",
        "given_name": given,
        "family_name": family or None,
        "company_name": None,
        "country_code": "GB",
        "language": "en",
        "metadata": {},
    }


def _mandate(customer: JSON, creditor: str, currency: str, created: str) -> JSON:
    return {
        "id": f"MD{_short(customer['id'])}",
        "created_at": created,
        "reference": f"MANDATE-{_short(customer['id'])[:6]}",
        "status": "active",
        "scheme": _SCHEMES.get(currency, "faster_payments"),
        "metadata": {},
        "links": {
            "customer": customer["id"],
            "creditor": creditor,
            "customer_bank_account": f"BA{_short(customer['id'] + 'bank')}",
        },
    }


# -- lists and cursors -----------------------------------------------------------------------------


def _matches(item: JSON, spec: _Resource, params: Mapping[str, str]) -> bool:
    for name in spec.exact_filters:
        wanted = params.get(name)
        value = item["links"].get(name) if name == "customer" else item.get(name)
        if wanted is not None and value != wanted:
            return False
    for name in spec.date_filters:
        for op in _RANGE_OPS:
            bound = params.get(f"{name}[{op}]")
            if bound is None:
                continue
            if not _compare(item[name], bound, op, is_day=name != "created_at"):
                return False
    return True


def _compare(value: str, bound: str, op: str, *, is_day: bool) -> bool:
    try:
        left: date | datetime = date.fromisoformat(value) if is_day else _when(value)
        right: date | datetime = date.fromisoformat(bound[:10]) if is_day else _when(bound)
    except ValueError:
        raise PaymentsAPIError(
            422, "validation_failed", "validation_failed", f"{bound!r} is not an ISO 8601 date"
        ) from None
    if op == "gt":
        return left > right
    if op == "gte":
        return left >= right
    if op == "lt":
        return left < right
    return left <= right


def _page(resource: str, items: list[JSON], params: Mapping[str, str]) -> JSON:
    try:
        limit = int(params.get("limit") or DEFAULT_LIMIT)
    except ValueError:
        limit = -1
    if not 1 <= limit <= MAX_LIMIT:
        raise PaymentsAPIError(
            422,
            "validation_failed",
            "validation_failed",
            f"limit must be between 1 and {MAX_LIMIT}",
            field="limit",
        )
    after, before = params.get("after"), params.get("before")
    if after:
        start = _decode_cursor(after, resource) + 1
        end = start + limit
    elif before:
        end = _decode_cursor(before, resource)
        start = max(end - limit, 0)
    else:
        start, end = 0, limit
    chunk = items[start:end]
    return {
        resource: chunk,
        "meta": {
            "cursors": {
                "before": _cursor(resource, start) if start > 0 and chunk else None,
                "after": _cursor(resource, end - 1) if end < len(items) and chunk else None,
            },
            "limit": limit,
        },
    }


def _cursor(resource: str, index: int) -> str:
    raw = json.dumps({"r": resource, "i": index}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(cursor: str, resource: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if decoded["r"] != resource or not isinstance(decoded["i"], int) or decoded["i"] < 0:
            raise ValueError(cursor)
        return int(decoded["i"])
    except (ValueError, KeyError, TypeError):
        raise PaymentsAPIError(
            400, "invalid_api_usage", "invalid_cursor", f"The cursor {cursor!r} is not valid"
        ) from None


# -- helpers ---------------------------------------------------------------------------------------


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {name} frame lacks columns {', '.join(missing)}")


def _minor(value: Any, what: str) -> int:
    if isinstance(value, bool | float) or not hasattr(value, "__index__"):
        raise ValueError(f"{what} must be an integer of minor units, not {value!r}")
    return int(value)


def _major(minor: int, currency: str) -> str:
    """GoCardless's payout-item style: a decimal string without trailing zeros (`"45.0"`)."""
    text = format(to_decimal(minor, currency).normalize(), "f")
    return text if "." in text else f"{text}.0"


def _day(value: Any) -> str:
    if isinstance(value, datetime | pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(cell_text(value)[:10]).isoformat()


def _stamp(value: Any) -> str:
    """`2014-01-01T12:00:00.000Z` from a datetime, a Timestamp, a date or an ISO string."""
    when: datetime
    if isinstance(value, pd.Timestamp):
        when = value.to_pydatetime()
    elif isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime.combine(value, time(), UTC)
    elif isinstance(value, str):
        when = datetime.fromisoformat(value.strip())
    else:
        raise ValueError(f"{value!r} is not a timestamp")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _when(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip())
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12].upper()


# -- HTTP ------------------------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]


def routes(state: GoCardlessPaymentsState, prefix: str = PREFIX) -> list[BaseRoute]:
    """The Payments API over `state` under `prefix` (see the module docstring), with
    `state.faults` applied to every endpoint."""
    prefix = prefix.rstrip("/")

    def api(call: Callable[[Request], JSON]) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                state.authorise(request.headers)
                body = call(request)
            except PaymentsAPIError as exc:
                return JSONResponse(exc.body, exc.status)
            return JSONResponse(body, 200, state.rate_headers())

        return endpoint

    def lister(resource: str) -> Handler:
        return api(lambda request: state.list(resource, dict(request.query_params)))

    def getter(resource: str) -> Handler:
        return api(lambda request: state.get(resource, request.path_params["id"]))

    table: list[tuple[str, str, Handler]] = [
        ("/payments", "payments", lister("payments")),
        ("/payments/{id}", "payment", getter("payments")),
        ("/payouts", "payouts", lister("payouts")),
        ("/payouts/{id}", "payout", getter("payouts")),
        ("/payout_items", "payout_items", api(lambda r: state.payout_items(dict(r.query_params)))),
        ("/mandates", "mandates", lister("mandates")),
        ("/customers", "customers", lister("customers")),
    ]
    return [
        Route(f"{prefix}{path}", state.faults.wrap(handler, label=label(name)), methods=["GET"])
        for path, name, handler in table
    ]
