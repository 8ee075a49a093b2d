"""Stripe objects as the API serves them: balance transactions, charges, refunds, disputes,
payouts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.sandbox.stripe.model import AVAILABLE_AFTER, JSON, derived_id, txn_id
from connectors.sandbox.stripe.values import as_date, is_missing, money, optional_text, unix
from recon.money import normalise_currency


def balance_transaction(
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
    """A balance transaction as Stripe derives it (`net = amount - fee`)."""
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
        "id": txn_id(source),
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


def charge_json(row: Mapping[str, Any]) -> JSON:
    """A seeded charge as the API serves it."""
    charge_id = str(row["charge_id"])
    currency = normalise_currency(str(row["currency"])).lower()
    amount = money(row, currency, f"charge {charge_id}")
    if amount <= 0:
        raise ValueError(f"charge {charge_id} must have a positive amount")
    invoice_id = optional_text(row.get("invoice_id"))
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
            "name": optional_text(row.get("customer_name")),
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": "WHMCS HOSTING",
        "captured": True,
        "created": unix(row["created"], f"charge {charge_id} created"),
        "currency": currency,
        "customer": None,
        "description": optional_text(row.get("description")),
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
        "payment_intent": derived_id("pi_", charge_id),
        "payment_method": derived_id("pm_", charge_id),
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


def refund_json(refund_id: str, charge: JSON, amount: int, created: int, txn: str) -> JSON:
    """A refund of `charge` as the API serves it."""
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


def dispute_json(
    dispute_id: str, charge: JSON, amount: int, created: int, status: str, bts: list[JSON]
) -> JSON:
    """A dispute of `charge` with its balance transactions."""
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


def payout_json(
    payout_id: str, row: Mapping[str, Any], amount: int, currency: str, created: int, txn: str
) -> JSON:
    """A payout as the API serves it."""
    arrival = as_date(row["arrival_on"], f"payout {payout_id} arrival_on")
    return {
        "id": payout_id,
        "object": "payout",
        "amount": amount,
        "application_fee": None,
        "application_fee_amount": None,
        "arrival_date": int(
            datetime(arrival.year, arrival.month, arrival.day, tzinfo=UTC).timestamp()
        ),
        "automatic": is_missing(row.get("automatic")) or bool(row.get("automatic")),
        "balance_transaction": txn,
        "created": created,
        "currency": currency,
        "description": "STRIPE PAYOUT",
        "destination": derived_id("ba_", "sandbox-bank-account"),
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
