"""Stripe records in canonical form: ISO minor units, upper-case ISO currency, UTC.

The parse functions (`balance_transaction`, `charge`, `refund`, `dispute`, `payout`) are pure.
A record that cannot be put in canonical form comes back as `Malformed` with named reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from connectors.stripe.wire import JSON
from recon.money import MoneyError, minor_exponent, normalise_currency

INVOICE_METADATA_KEYS = ("invoice_id", "invoiceid", "invoice")
"""Charge metadata keys that carry the WHMCS invoice id, first match wins."""

# Stripe's own minor units differ from ISO 4217 for a few currencies (stripe.com/docs/currencies).
STRIPE_ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"}
    | {"PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
STRIPE_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


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
