"""The Stripe sandbox's constants, error answer, collections, amounts and derived ids."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

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

COMMON_PARAMS = frozenset({"limit", "starting_after", "ending_before", "created"})


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


def missing(kind: str, object_id: str, param: str) -> StripeAPIError:
    """The 404 Stripe answers for an unknown object id."""
    return StripeAPIError(
        404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


@dataclass(frozen=True)
class Collection:
    """One list endpoint: its objects newest first, and the filters it accepts."""

    object_name: str
    path: str
    filters: frozenset[str]
    items: tuple[JSON, ...]

    def index(self) -> dict[str, JSON]:
        """The collection's objects by id."""
        return {item["id"]: item for item in self.items}


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


def txn_id(source_id: str) -> str:
    """The balance transaction id derived from a source id."""
    return "txn_" + hashlib.sha256(f"txn/{source_id}".encode()).hexdigest()[:24]


def derived_id(prefix: str, source_id: str) -> str:
    """A stable id with `prefix` derived from a source id."""
    return prefix + hashlib.sha256(f"{prefix}/{source_id}".encode()).hexdigest()[:24]


def balance_transaction_id(source_id: str, *, reversal: bool = False) -> str:
    """The id of the balance transaction the sandbox derives for an object (`ch_`, `re_`, `dp_`,
    `po_`), or with `reversal` for a won dispute's reversal."""
    return txn_id(f"{source_id}/reversal" if reversal else source_id)


def payment_intent_id(charge_id: str) -> str:
    """The payment intent the sandbox gives a charge."""
    return derived_id("pi_", charge_id)


def public(value: Any) -> Any:
    """The object without the sandbox's private `_` keys."""
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [public(v) for v in value]
    return value
