"""A fake Stripe API (v1): balance transactions, charges, refunds, disputes and payouts.

`StripeState` is seeded from pandas frames (see the `*_COLUMNS` constants; amounts are integer
minor units of the ISO 4217 currency, timestamps tz-aware datetimes or unix seconds) and DERIVES
what Stripe derives: one balance transaction per charge (`amount`, `fee`, `net = amount - fee`),
refund (negative), dispute (negative amount plus the dispute fee) and payout (minus the payout
total). A dispute the merchant won has a second one, the reversal that gives the amount back
(category `dispute_reversal`, same `dp_` source; the dispute fee is not returned), so one charge
may have several balance transactions and two may share a source. A payout's amount is the sum of the nets of the balance transactions paid out in it, unless
the seed gives an explicit `amount_minor` (a payout that does not add up). Ids are the seed's; the
balance transaction ids, request ids and every other generated value are derived from them, so
one seed always serves the same bytes.

`routes(state)` serves it under Stripe's real paths with Stripe's wire format (shared reference
providers.md §3): list objects `{"object": "list", "data", "has_more", "url"}`, newest first, with
`limit`, `starting_after`/`ending_before`, `created[gt|gte|lt|lte]` and each list's own filters
(`payout`, `type`, `source`, `currency` on balance transactions; `charge` on refunds and disputes;
`status`, `arrival_date` on payouts); unknown parameters are refused as Stripe refuses them.
Requests need `Authorization: Bearer <the secret key>`; a wrong key answers 401 with the key
masked as Stripe masks it. Faults come from `state.faults` (a `FaultPlan`); their answers are
rewritten into Stripe's error shape, and `Stripe-Should-Retry: true` is sent on `lock_timeout`
429s (and on any status listed in `state.should_retry`), which is how the SDK learns a 429 may
be retried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connectors.sandbox.faults import FaultPlan
from recon.money import minor_exponent, normalise_currency

JSON = dict[str, Any]

CHARGE_COLUMNS = (
    "charge_id",
    "created",
    "amount_minor",
    "currency",
    "fee_minor",
    "description",
    "customer_name",
)
"""Required columns of the `charges` frame; optional: `invoice_id` (to metadata), `payout_id`."""
REFUND_COLUMNS = ("refund_id", "charge_id", "created", "amount_minor", "currency")
"""Required columns of the `refunds` frame; optional: `payout_id`."""
DISPUTE_COLUMNS = (
    "dispute_id",
    "charge_id",
    "created",
    "amount_minor",
    "currency",
    "fee_minor",
    "status",
)
"""Required columns of the `disputes` frame; optional: `payout_id`, and for a `won` dispute
`reversed_at` (when the amount came back; default seven days after `created`) and
`reversal_payout_id` (the payout that pays the reversal out)."""
WON_REVERSAL_AFTER = timedelta(days=7)
PAYOUT_COLUMNS = ("payout_id", "created", "arrival_on", "currency", "status")
"""Required columns of the `payouts` frame; optional: `amount_minor` (else derived) and
`automatic` (default true; a manual payout's balance transactions cannot be listed by `payout=`)."""

PAYOUT_STATUSES = frozenset({"paid", "pending", "in_transit", "canceled", "failed"})
DISPUTE_STATUSES = frozenset(
    {
        "warning_needs_response",
        "warning_under_review",
        "warning_closed",
        "needs_response",
        "under_review",
        "won",
        "lost",
        "prevented",
    }
)
AVAILABLE_AFTER = timedelta(days=2)
"""A charge's funds become available this long after it (its `available_on`)."""

# Stripe's own minor units differ from ISO 4217 for a few currencies (stripe.com/docs/currencies).
STRIPE_ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"}
    | {"PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
STRIPE_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

RATE_LIMIT_BODY: JSON = {
    "error": {
        "code": "rate_limit",
        "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
        "message": "Request rate limit exceeded. Learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        "type": "invalid_request_error",
    }
}
LOCK_TIMEOUT_BODY: JSON = {
    "error": {
        "code": "lock_timeout",
        "doc_url": "https://stripe.com/docs/error-codes/lock-timeout",
        "message": "This object cannot be accessed right now because another API request or "
        "Stripe process is currently accessing it. If you see this error intermittently, retry "
        "the request.",
        "type": "invalid_request_error",
    }
}
"""Use with `faults.status(429, body=LOCK_TIMEOUT_BODY)`: answered with `Stripe-Should-Retry: true`."""

_COMMON_PARAMS = frozenset({"limit", "starting_after", "ending_before", "created"})


def drop_amount(record: JSON) -> None:
    """A malformation for `faults.malform`: the record loses its `amount` (payouts' own kept)."""
    if record.get("type") != "payout":
        record.pop("amount", None)


def bad_currency(record: JSON) -> None:
    """A malformation for `faults.malform`: a currency that is not ISO 4217 (payouts' own kept)."""
    if record.get("type") != "payout":
        record["currency"] = "zzz"


MALFORMATIONS: dict[str, Callable[[JSON], None]] = {
    "missing_amount": drop_amount,
    "bad_currency": bad_currency,
}
"""Named record malformations (e.g. for a `--faults` option of `recon sandbox serve`)."""


class StripeAPIError(Exception):
    """An error answer in Stripe's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param

    def body(self) -> JSON:
        """The JSON body Stripe sends."""
        error: JSON = {"message": self.message, "type": self.type}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def _missing(kind: str, object_id: str, param: str) -> StripeAPIError:
    return StripeAPIError(
        404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


@dataclass(frozen=True)
class _Collection:
    """One list endpoint: its objects newest first, and the filters it accepts."""

    object_name: str
    path: str
    filters: frozenset[str]
    items: tuple[JSON, ...]

    def index(self) -> dict[str, JSON]:
        return {item["id"]: item for item in self.items}


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
        world = _World.build(charges, refunds, disputes, payouts, now)
        self._collections = world.collections()
        self._indexes = {name: c.index() for name, c in self._collections.items()}

    # -- views for tests -----------------------------------------------------------------------

    def objects(self, resource: str) -> list[JSON]:
        """Every object of a resource (`balance_transactions`, `charges`, ...) as served, newest
        first (deep copies)."""
        return [_public(o) for o in self._collections[resource].items]

    def paid_out_in(self, payout_id: str) -> list[JSON]:
        """The balance transactions a `payout=` listing returns (the payout's own included)."""
        return [
            _public(o)
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
        if not hmac.compare_digest(key.encode(), self._api_key.encode()):
            raise StripeAPIError(401, f"Invalid API Key provided: {mask_key(key)}")

    def list(self, resource: str, params: Mapping[str, str]) -> JSON:
        """One page of a list endpoint, filtered and paged as Stripe does."""
        collection = self._collections[resource]
        query = _nested(params)
        unknown = sorted(k for k in query if k not in _COMMON_PARAMS | collection.filters)
        if unknown:
            raise StripeAPIError(400, f"Received unknown parameter: {unknown[0]}", param=unknown[0])
        limit = _limit(query.get("limit"))
        items = [i for i in collection.items if self._matches(collection, i, query)]
        after, before = query.get("starting_after"), query.get("ending_before")
        if after is not None and before is not None:
            raise StripeAPIError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
            )
        if after is not None or before is not None:
            cursor_id = _text_param(after if after is not None else before, "cursor")
            param = "starting_after" if after is not None else "ending_before"
            cursor = self._indexes[resource].get(cursor_id)
            if cursor is None:
                raise _missing(collection.object_name, cursor_id, param)
            key = _sort_key(cursor)
            if after is not None:
                items = [i for i in items if _sort_key(i) < key]
                page, has_more = items[:limit], len(items) > limit
            else:
                items = [i for i in items if _sort_key(i) > key]
                page, has_more = items[-limit:], len(items) > limit
        else:
            page, has_more = items[:limit], len(items) > limit
        return {"object": "list", "data": page, "has_more": has_more, "url": collection.path}

    def retrieve(self, resource: str, object_id: str) -> JSON:
        """One object by id, or 404 as Stripe answers it."""
        found = self._indexes[resource].get(object_id)
        if found is None:
            raise _missing(self._collections[resource].object_name, object_id, "id")
        return found

    def next_request_id(self) -> str:
        """A deterministic `Request-Id`."""
        with self._lock:
            self._requests += 1
            number = self._requests
        return "req_" + hashlib.sha256(f"{self.account_id}/{number}".encode()).hexdigest()[:14]

    def _matches(self, collection: _Collection, item: JSON, query: Mapping[str, Any]) -> bool:
        if "created" in query and not _in_range(item["created"], query["created"], "created"):
            return False
        for name in collection.filters & query.keys():
            wanted = query[name]
            if name == "arrival_date":
                if not _in_range(item["arrival_date"], wanted, name):
                    return False
            elif name == "payout":
                payout_id = _text_param(wanted, name)
                paid = self._indexes["payouts"].get(payout_id)
                if paid is None:
                    raise _missing("payout", payout_id, "payout")
                if not paid["automatic"]:
                    raise StripeAPIError(
                        400,
                        "Balance transaction history can only be filtered on automatic "
                        "transfers, not manual.",
                        param="payout",
                    )
                if item.get("_payout") != payout_id:
                    return False
            elif item.get(name) != _text_param(wanted, name):
                return False
        return True


def mask_key(key: str) -> str:
    """A key as Stripe shows it in errors: its prefix, `****` and its last four characters."""
    parts = key.split("_")
    prefix = "_".join(parts[:2]) + "_" if len(parts) > 2 and len(parts[0]) == 2 else ""
    return f"{prefix}****{key[-4:]}" if len(key) >= 12 else "****"


def stripe_amount(minor: int, currency: str) -> int:
    """ISO 4217 minor units as Stripe's API counts them (equal except for a few currencies)."""
    code = normalise_currency(currency)
    stripe_exponent = 0 if code in STRIPE_ZERO_DECIMAL else 3 if code in STRIPE_THREE_DECIMAL else 2
    shift = stripe_exponent - minor_exponent(code)
    if shift >= 0:
        return int(minor * 10**shift)
    scaled, rest = divmod(minor, 10**-shift)
    if rest:
        raise ValueError(f"{minor} minor units of {code} cannot be sent to Stripe exactly")
    return int(scaled)


# -- seeding ---------------------------------------------------------------------------------------


def _txn_id(source_id: str) -> str:
    return "txn_" + hashlib.sha256(f"txn/{source_id}".encode()).hexdigest()[:24]


def _derived_id(prefix: str, source_id: str) -> str:
    return prefix + hashlib.sha256(f"{prefix}/{source_id}".encode()).hexdigest()[:24]


def balance_transaction_id(source_id: str, *, reversal: bool = False) -> str:
    """The id of the balance transaction the sandbox derives for an object (`ch_`, `re_`, `dp_`,
    `po_`), or with `reversal` for a won dispute's reversal."""
    return _txn_id(f"{source_id}/reversal" if reversal else source_id)


def payment_intent_id(charge_id: str) -> str:
    """The payment intent the sandbox gives a charge."""
    return _derived_id("pi_", charge_id)


@dataclass
class _World:
    charges: list[JSON]
    refunds: list[JSON]
    disputes: list[JSON]
    payouts: list[JSON]
    balance_transactions: list[JSON]

    @classmethod
    def build(
        cls,
        charges: pd.DataFrame,
        refunds: pd.DataFrame | None,
        disputes: pd.DataFrame | None,
        payouts: pd.DataFrame | None,
        now: datetime | int | None,
    ) -> _World:
        charge_rows = _rows(charges, CHARGE_COLUMNS, "charges")
        refund_rows = _rows(refunds, REFUND_COLUMNS, "refunds")
        dispute_rows = _rows(disputes, DISPUTE_COLUMNS, "disputes")
        payout_rows = _rows(payouts, PAYOUT_COLUMNS, "payouts")
        seen: set[str] = set()
        charge_objs: dict[str, JSON] = {}
        bts: list[JSON] = []
        payout_of: dict[str, str | None] = {}  # txn id -> payout id
        for row in charge_rows:
            charge = _charge(row)
            _unique(charge["id"], "ch_", seen)
            charge_objs[charge["id"]] = charge
            fee = _int(row["fee_minor"], f"charge {charge['id']} fee_minor")
            bt = _balance_transaction(
                source=charge["id"],
                type_="charge",
                category="charge",
                created=charge["created"],
                amount=charge["amount"],
                fee=stripe_amount(fee, charge["currency"]),
                fee_description="Stripe processing fees",
                currency=charge["currency"],
                description=charge["description"],
            )
            charge["balance_transaction"] = bt["id"]
            bts.append(bt)
            payout_of[bt["id"]] = _optional_text(row.get("payout_id"))
        refund_objs = []
        for row in refund_rows:
            refund_id = str(row["refund_id"])
            _unique(refund_id, "re_", seen)
            charge = _charge_of(charge_objs, row, f"refund {refund_id}")
            amount = _money(row, charge["currency"], f"refund {refund_id}")
            created = _unix(row["created"], f"refund {refund_id} created")
            bt = _balance_transaction(
                source=refund_id,
                type_="refund",
                category="refund",
                created=created,
                amount=-amount,
                fee=0,
                fee_description="",
                currency=charge["currency"],
                description=f"REFUND FOR CHARGE ({charge['description'] or charge['id']})",
            )
            bts.append(bt)
            payout_of[bt["id"]] = _optional_text(row.get("payout_id"))
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            refund_objs.append(_refund(refund_id, charge, amount, created, bt["id"]))
        dispute_objs = []
        for row in dispute_rows:
            dispute_id = str(row["dispute_id"])
            _unique(dispute_id, "dp_", seen)
            charge = _charge_of(charge_objs, row, f"dispute {dispute_id}")
            amount = _money(row, charge["currency"], f"dispute {dispute_id}")
            fee = stripe_amount(
                _int(row["fee_minor"], f"dispute {dispute_id} fee_minor"), charge["currency"]
            )
            status = str(row["status"])
            if status not in DISPUTE_STATUSES:
                raise ValueError(f"dispute {dispute_id} has unknown status {status!r}")
            created = _unix(row["created"], f"dispute {dispute_id} created")
            bt = _balance_transaction(
                source=dispute_id,
                type_="adjustment",
                category="dispute",
                created=created,
                amount=-amount,
                fee=fee,
                fee_description="Dispute fee",
                currency=charge["currency"],
                description=f"Chargeback withdrawal for {charge['id']}",
            )
            bts.append(bt)
            payout_of[bt["id"]] = _optional_text(row.get("payout_id"))
            charge["disputed"] = True
            dispute_bts = [bt]
            if status == "won":
                reversal = _reversal(row, dispute_id, charge, amount, created)
                bts.append(reversal)
                payout_of[reversal["id"]] = _optional_text(row.get("reversal_payout_id"))
                dispute_bts.append(reversal)
            dispute_objs.append(_dispute(dispute_id, charge, amount, created, status, dispute_bts))
        payout_objs = _payouts(payout_rows, bts, payout_of, seen)
        for bt in bts:
            bt["_payout"] = payout_of.get(bt["id"])
        clock = _now(now, bts, payout_objs)
        for bt in bts:
            if bt["type"] != "payout" and bt["_payout"] is None and bt["available_on"] > clock:
                bt["status"] = "pending"
        return cls(list(charge_objs.values()), refund_objs, dispute_objs, payout_objs, bts)

    def collections(self) -> dict[str, _Collection]:
        def newest_first(items: Iterable[JSON]) -> tuple[JSON, ...]:
            return tuple(sorted(items, key=_sort_key, reverse=True))

        return {
            "balance_transactions": _Collection(
                "balance_transaction",
                "/v1/balance_transactions",
                frozenset({"payout", "type", "source", "currency"}),
                newest_first(self.balance_transactions),
            ),
            "charges": _Collection(
                "charge", "/v1/charges", frozenset({"payment_intent"}), newest_first(self.charges)
            ),
            "refunds": _Collection(
                "refund",
                "/v1/refunds",
                frozenset({"charge", "payment_intent"}),
                newest_first(self.refunds),
            ),
            "disputes": _Collection(
                "dispute",
                "/v1/disputes",
                frozenset({"charge", "payment_intent"}),
                newest_first(self.disputes),
            ),
            "payouts": _Collection(
                "payout",
                "/v1/payouts",
                frozenset({"status", "arrival_date"}),
                newest_first(self.payouts),
            ),
        }


def _payouts(
    rows: list[dict[str, Any]],
    bts: list[JSON],
    payout_of: dict[str, str | None],
    seen: set[str],
) -> list[JSON]:
    objs: list[JSON] = []
    known = {str(r["payout_id"]) for r in rows}
    for txn_id, payout_id in payout_of.items():
        if payout_id is not None and payout_id not in known:
            raise ValueError(f"balance transaction {txn_id} names unknown payout {payout_id}")
    for row in rows:
        payout_id = str(row["payout_id"])
        _unique(payout_id, "po_", seen)
        currency = normalise_currency(str(row["currency"])).lower()
        created = _unix(row["created"], f"payout {payout_id} created")
        members = [bt for bt in bts if payout_of.get(bt["id"]) == payout_id]
        for bt in members:
            if bt["currency"] != currency:
                raise ValueError(
                    f"payout {payout_id} is in {currency} but {bt['source']} is in {bt['currency']}"
                )
            if bt["created"] > created:
                raise ValueError(f"{bt['source']} is created after its payout {payout_id}")
        explicit = row.get("amount_minor")
        if _is_missing(explicit):
            amount = sum(bt["net"] for bt in members)
        else:
            amount = stripe_amount(_int(explicit, f"payout {payout_id} amount_minor"), currency)
        status = str(row["status"])
        if status not in PAYOUT_STATUSES:
            raise ValueError(f"payout {payout_id} has unknown status {status!r}")
        bt = _balance_transaction(
            source=payout_id,
            type_="payout",
            category="payout",
            created=created,
            amount=-amount,
            fee=0,
            fee_description="",
            currency=currency,
            description="STRIPE PAYOUT",
            available_on=created,
        )
        bts.append(bt)
        payout_of[bt["id"]] = payout_id
        objs.append(_payout(payout_id, row, amount, currency, created, bt["id"]))
    return objs


def _reversal(
    row: Mapping[str, Any], dispute_id: str, charge: JSON, amount: int, created: int
) -> JSON:
    """A won dispute's second balance transaction: the disputed amount back."""
    when = row.get("reversed_at")
    reversed_at = (
        created + int(WON_REVERSAL_AFTER.total_seconds())
        if _is_missing(when)
        else _unix(when, f"dispute {dispute_id} reversed_at")
    )
    if reversed_at < created:
        raise ValueError(f"dispute {dispute_id} is reversed before it was opened")
    bt = _balance_transaction(
        source=dispute_id,
        type_="adjustment",
        category="dispute_reversal",
        created=reversed_at,
        amount=amount,
        fee=0,
        fee_description="",
        currency=charge["currency"],
        description=f"Chargeback reversal for {charge['id']}",
    )
    bt["id"] = balance_transaction_id(dispute_id, reversal=True)
    return bt


def _balance_transaction(
    *,
    source: str,
    type_: str,
    category: str,
    created: int,
    amount: int,
    fee: int,
    fee_description: str,
    currency: str,
    description: str | None,
    available_on: int | None = None,
) -> JSON:
    if available_on is None:
        day = datetime.fromtimestamp(created, UTC).date() + AVAILABLE_AFTER
        available_on = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    fee_details = (
        [
            {
                "amount": fee,
                "application": None,
                "currency": currency,
                "description": fee_description,
                "type": "stripe_fee",
            }
        ]
        if fee
        else []
    )
    return {
        "id": _txn_id(source),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": available_on,
        "balance_type": "payments",
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fee_details,
        "net": amount - fee,
        "reporting_category": category,
        "source": source,
        "status": "available",
        "type": type_,
    }


def _charge(row: Mapping[str, Any]) -> JSON:
    charge_id = str(row["charge_id"])
    currency = normalise_currency(str(row["currency"])).lower()
    amount = _money(row, currency, f"charge {charge_id}")
    if amount <= 0:
        raise ValueError(f"charge {charge_id} must have a positive amount")
    invoice_id = _optional_text(row.get("invoice_id"))
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": None,
            "name": _optional_text(row.get("customer_name")),
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": "WHMCS HOSTING",
        "captured": True,
        "created": _unix(row["created"], f"charge {charge_id} created"),
        "currency": currency,
        "customer": None,
        "description": _optional_text(row.get("description")),
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        "metadata": {"invoice_id": invoice_id} if invoice_id else {},
        "on_behalf_of": None,
        "outcome": {
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": True,
        "payment_intent": _derived_id("pi_", charge_id),
        "payment_method": _derived_id("pm_", charge_id),
        "payment_method_details": {
            "card": {"brand": "visa", "country": "US", "funding": "credit", "last4": "4242"},
            "type": "card",
        },
        "receipt_email": None,
        "receipt_url": None,
        "refunded": False,
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded",
        "transfer_data": None,
        "transfer_group": None,
    }


def _refund(refund_id: str, charge: JSON, amount: int, created: int, txn: str) -> JSON:
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": txn,
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "destination_details": {"card": {"type": "refund"}, "type": "card"},
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "reason": None,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


def _dispute(
    dispute_id: str, charge: JSON, amount: int, created: int, status: str, bts: list[JSON]
) -> JSON:
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": bts,
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "evidence_details": {
            "due_by": created + 21 * 86400,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "reason": "general",
        "status": status,
    }


def _payout(
    payout_id: str, row: Mapping[str, Any], amount: int, currency: str, created: int, txn: str
) -> JSON:
    arrival = _date(row["arrival_on"], f"payout {payout_id} arrival_on")
    return {
        "id": payout_id,
        "object": "payout",
        "amount": amount,
        "application_fee": None,
        "application_fee_amount": None,
        "arrival_date": int(
            datetime(arrival.year, arrival.month, arrival.day, tzinfo=UTC).timestamp()
        ),
        "automatic": _is_missing(row.get("automatic")) or bool(row.get("automatic")),
        "balance_transaction": txn,
        "created": created,
        "currency": currency,
        "description": "STRIPE PAYOUT",
        "destination": _derived_id("ba_", "sandbox-bank-account"),
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": {},
        "method": "standard",
        "original_payout": None,
        "reconciliation_status": "completed",
        "reversed_by": None,
        "source_type": "card",
        "statement_descriptor": None,
        "status": str(row["status"]),
        "type": "bank_account",
    }


def _now(now: datetime | int | None, bts: Sequence[JSON], payouts: Sequence[JSON]) -> int:
    """The sandbox's clock: given, or the newest seeded moment (so a seed is its own 'now')."""
    if now is not None:
        return _unix(now, "now")
    return max([bt["created"] for bt in bts] + [p["created"] for p in payouts], default=0)


def _charge_of(charges: Mapping[str, JSON], row: Mapping[str, Any], what: str) -> JSON:
    charge_id = str(row["charge_id"])
    charge = charges.get(charge_id)
    if charge is None:
        raise ValueError(f"{what} is for unknown charge {charge_id}")
    if normalise_currency(str(row["currency"])).lower() != charge["currency"]:
        raise ValueError(
            f"{what} is in {row['currency']} but its charge is in {charge['currency']}"
        )
    return charge


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {name} frame lacks columns {', '.join(missing)}")


def _rows(frame: pd.DataFrame | None, columns: Sequence[str], name: str) -> list[dict[str, Any]]:
    if frame is None:
        return []
    _require(frame, columns, name)
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _unique(object_id: str, prefix: str, seen: set[str]) -> None:
    if not object_id.startswith(prefix):
        raise ValueError(f"{object_id!r} is not a Stripe id starting with {prefix!r}")
    if object_id in seen:
        raise ValueError(f"{object_id} appears twice in the seed")
    seen.add(object_id)


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _optional_text(value: Any) -> str | None:
    return None if _is_missing(value) or str(value) == "" else str(value)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or _is_missing(value):
        raise ValueError(f"{what} must be an integer number of minor units")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{what} must be an integer number of minor units, not {value}")
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an integer number of minor units") from None


def _money(row: Mapping[str, Any], currency: str, what: str) -> int:
    return stripe_amount(_int(row["amount_minor"], f"{what} amount_minor"), currency)


def _unix(value: Any, what: str) -> int:
    if isinstance(value, bool) or _is_missing(value):
        raise ValueError(f"{what} is missing")
    if isinstance(value, datetime):  # pd.Timestamp is a datetime
        if value.tzinfo is None:
            raise ValueError(f"{what} must be timezone-aware, not {value}")
        return int(value.timestamp())
    if isinstance(value, int) or (hasattr(value, "item") and isinstance(value.item(), int)):
        return int(value)
    raise ValueError(f"{what} must be a tz-aware datetime or unix seconds, not {value!r}")


def _date(value: Any, what: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError(f"{what} must be a date, not {value!r}") from None


# -- request parsing -------------------------------------------------------------------------------


def _sort_key(item: JSON) -> tuple[int, str]:
    return int(item["created"]), str(item["id"])


def _nested(params: Mapping[str, str]) -> dict[str, Any]:
    """Stripe's form encoding back to nested values: `created[gte]=1` → {"created": {"gte": "1"}}."""
    query: dict[str, Any] = {}
    for key, value in params.items():
        name, bracket, rest = key.partition("[")
        if bracket and rest.endswith("]"):
            inner = query.setdefault(name, {})
            if not isinstance(inner, dict):
                raise StripeAPIError(400, f"Invalid hash: {name}", param=name)
            inner[rest[:-1]] = value
        else:
            query[key] = value
    return query


def _text_param(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise StripeAPIError(400, f"Invalid string: {value!r}", param=name)
    return value


def _integer_param(value: Any, name: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise StripeAPIError(400, f"Invalid integer: {value}", param=name) from None


def _limit(value: Any) -> int:
    if value is None:
        return 10
    limit = _integer_param(value, "limit")
    if limit < 1:
        raise StripeAPIError(400, "This value must be greater than or equal to 1.", param="limit")
    if limit > 100:
        raise StripeAPIError(400, "This value must be less than or equal to 100.", param="limit")
    return limit


def _in_range(value: int, wanted: Any, name: str) -> bool:
    if not isinstance(wanted, dict):
        return value == _integer_param(wanted, name)
    checks: dict[str, Callable[[int, int], bool]] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    for op, bound in wanted.items():
        check = checks.get(op)
        if check is None:
            raise StripeAPIError(400, f"Received unknown parameter: {name}[{op}]", param=name)
        if not check(value, _integer_param(bound, f"{name}[{op}]")):
            return False
    return True


# -- HTTP ------------------------------------------------------------------------------------------

_RESOURCES = ("balance_transactions", "charges", "refunds", "disputes", "payouts")


def routes(state: StripeState) -> list[BaseRoute]:
    """Stripe's list and retrieve endpoints over `state`, with `state.faults` applied."""

    def listing(resource: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            return _answer(
                state,
                request,
                lambda: state.list(resource, dict(request.query_params)),
            )

        return endpoint

    def single(resource: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            object_id = str(request.path_params["id"])
            return _answer(state, request, lambda: _public(state.retrieve(resource, object_id)))

        return endpoint

    table: list[BaseRoute] = []
    for resource in _RESOURCES:
        label = _labeller(resource)
        table.append(
            Route(
                f"/v1/{resource}",
                _stripe_errors(state, state.faults.wrap(listing(resource), label=label)),
                methods=["GET"],
            )
        )
        table.append(
            Route(
                f"/v1/{resource}/{{id}}",
                _stripe_errors(state, state.faults.wrap(single(resource), label=label)),
                methods=["GET"],
            )
        )
    return table


def _labeller(resource: str) -> Callable[[Request], Any]:
    async def label(_request: Request) -> str:
        return resource

    return label


def _answer(state: StripeState, request: Request, produce: Callable[[], JSON]) -> Response:
    headers = {"Request-Id": state.next_request_id()}
    if version := request.headers.get("stripe-version"):
        headers["Stripe-Version"] = version
    try:
        state.authorise(request.headers.get("authorization"))
        body = produce()
    except StripeAPIError as exc:
        return JSONResponse(exc.body(), exc.status, headers)
    return Response(
        json.dumps(_public(body), indent=2, ensure_ascii=False).encode("utf-8"),
        200,
        headers,
        media_type="application/json",
    )


def _public(value: Any) -> Any:
    """The object without the sandbox's private `_` keys."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


def _stripe_errors(
    state: StripeState, endpoint: Callable[[Request], Any]
) -> Callable[[Request], Any]:
    """Rewrite the fault plan's generic error answers into Stripe's error shape and headers."""

    async def wrapped(request: Request) -> Response:
        response: Response = await endpoint(request)
        if response.status_code < 400 or not isinstance(response, JSONResponse):
            return response
        try:
            body = json.loads(bytes(response.body))
        except ValueError:
            return response
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            body = _error_body(response.status_code)
            error = body["error"]
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() in ("retry-after", "request-id", "stripe-version")
        }
        headers.setdefault("Request-Id", state.next_request_id())
        should_retry = state.should_retry.get(response.status_code)
        if error.get("code") == "lock_timeout":
            should_retry = "true"
        if should_retry is not None:
            headers["Stripe-Should-Retry"] = should_retry
        return JSONResponse(body, response.status_code, headers)

    return wrapped


def _error_body(status: int) -> JSON:
    if status == 429:
        return json.loads(json.dumps(RATE_LIMIT_BODY))  # type: ignore[no-any-return]
    if status >= 500:
        return {"error": {"message": "An unknown error occurred", "type": "api_error"}}
    return StripeAPIError(status, "The request could not be processed.").body()
