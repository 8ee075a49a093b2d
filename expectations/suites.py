"""The expectation suites a finance team wants on every batch before it loads.

Each expectation carries a short `name` in its meta: that name is what a quarantined row lists
as the reason it was held. Window bounds and the amount ceiling are suite parameters
(`$PARAMETER`), so the committed JSON stays the same whatever window a run validates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import great_expectations as gx
from great_expectations import expectations as gxe

from recon.money import ISO_4217_CODES

WHMCS_STATUSES = (
    "Unpaid",
    "Paid",
    "Cancelled",
    "Refunded",
    "Collections",
    "Payment Pending",
    "Draft",
)
TRANSACTION_STATUSES = ("booked", "pending")
DIRECT_DEBIT_STATUSES = (*TRANSACTION_STATUSES, "cancelled", "failed", "charged_back")
STRIPE_KINDS = ("charge", "refund", "dispute", "fee", "adjustment", "payout")
PAYOUT_STATUSES = ("paid", "pending", "in_transit", "canceled", "failed")

WINDOW_FROM = {"$PARAMETER": "window_from"}
WINDOW_TO = {"$PARAMETER": "window_to"}
MAX_ABS_AMOUNT = {"$PARAMETER": "max_abs_amount_minor"}
MIN_AMOUNT = {"$PARAMETER": "min_amount_minor"}
LATEST_DAY = {"$PARAMETER": "latest_day"}


def _named(expectation: gxe.Expectation, name: str, why: str) -> gxe.Expectation:
    expectation.meta = {"name": name}
    expectation.notes = why
    return expectation


def _currency(column: str = "currency") -> gxe.Expectation:
    return _named(
        gxe.ExpectColumnValuesToBeInSet(column=column, value_set=sorted(ISO_4217_CODES)),
        "currency_iso4217",
        "The currency is an active ISO 4217 code.",
    )


def _present(column: str, name: str) -> gxe.Expectation:
    return _named(gxe.ExpectColumnValuesToNotBeNull(column=column), name, f"`{column}` is present.")


def _amount_bounds(column: str = "amount_minor") -> gxe.Expectation:
    return _named(
        gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=MIN_AMOUNT, max_value=MAX_ABS_AMOUNT
        ),
        "amount_sane",
        "The amount is within the sane bounds set for the tenant.",
    )


def _in_window(column: str, name: str) -> gxe.Expectation:
    return _named(
        gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=WINDOW_FROM, max_value=WINDOW_TO
        ),
        name,
        f"`{column}` lies in the requested window (plus the grace days).",
    )


def _transactions_common(
    kinds: tuple[str, ...] | None, statuses: tuple[str, ...] = TRANSACTION_STATUSES
) -> list[gxe.Expectation]:
    expectations = [
        _present("source_id", "id_present"),
        _present("amount_minor", "amount_present"),
        _present("currency", "currency_present"),
        _present("booked_on", "date_present"),
        _currency(),
        _in_window("booked_on", "booked_in_window"),
        _amount_bounds(),
        _named(
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["source", "account_ref", "source_id"]),
            "id_unique",
            "No two records of one account share an id.",
        ),
        _named(
            gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(statuses)),
            "status_known",
            "The booking status is one this source uses.",
        ),
    ]
    if kinds is not None:
        expectations.append(
            _named(
                gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=list(kinds)),
                "kind_known",
                "The transaction kind is one the engine knows.",
            )
        )
    return expectations


def bank_transactions() -> list[gxe.Expectation]:
    """GoCardless Bank Account Data lines."""
    return _transactions_common(None)


def gocardless_payments() -> list[gxe.Expectation]:
    """GoCardless Payments (direct debit) payments, their fees and what became of them."""
    return _transactions_common(("payment", "fee"), DIRECT_DEBIT_STATUSES)


def stripe_transactions() -> list[gxe.Expectation]:
    """Stripe charges, refunds, disputes and fees (balance transactions)."""
    return [
        *_transactions_common(STRIPE_KINDS),
        _present("net_minor", "net_present"),
        _named(
            gxe.ExpectColumnPairValuesToBeEqual(column_A="net_minor", column_B="amount_minus_fee"),
            "net_is_amount_minus_fee",
            "Stripe's net equals amount minus fee.",
        ),
    ]


def payouts() -> list[gxe.Expectation]:
    """Stripe and GoCardless payouts."""
    return [
        _present("payout_id", "id_present"),
        _present("amount_minor", "amount_present"),
        _present("currency", "currency_present"),
        _present("arrival_on", "date_present"),
        _currency(),
        _in_window("arrival_on", "arrival_in_window"),
        _amount_bounds(),
        _named(
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["source", "payout_id"]),
            "id_unique",
            "No two payouts share an id.",
        ),
        _named(
            gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(PAYOUT_STATUSES)),
            "status_known",
            "The payout status is one Stripe or GoCardless uses.",
        ),
    ]


def whmcs_invoices() -> list[gxe.Expectation]:
    """WHMCS invoices (not windowed: every open invoice is a candidate)."""
    return [
        _present("invoice_id", "id_present"),
        _present("client_id", "client_present"),
        _present("total_minor", "total_present"),
        _present("balance_minor", "balance_present"),
        _present("currency", "currency_present"),
        _present("issued_on", "date_present"),
        _currency(),
        _named(
            gxe.ExpectColumnValuesToBeUnique(column="invoice_id"),
            "id_unique",
            "No two invoices share an id.",
        ),
        _named(
            gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(WHMCS_STATUSES)),
            "status_known",
            "The status is one WHMCS uses.",
        ),
        _named(
            gxe.ExpectColumnValuesToBeBetween(column="balance_minor", min_value=0),
            "balance_not_negative",
            "The open balance is not negative.",
        ),
        _named(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="total_minor", column_B="balance_minor", or_equal=True
            ),
            "balance_within_total",
            "The open balance does not exceed the invoice total.",
        ),
        _amount_bounds("total_minor"),
    ]


def whmcs_transactions() -> list[gxe.Expectation]:
    """Payments WHMCS recorded against invoices."""
    return [
        _present("whmcs_txn_id", "id_present"),
        _present("amount_minor", "amount_present"),
        _present("currency", "currency_present"),
        _present("recorded_on", "date_present"),
        _currency(),
        _named(
            gxe.ExpectColumnValuesToBeUnique(column="whmcs_txn_id"),
            "id_unique",
            "No two WHMCS transactions share an id.",
        ),
        _named(
            gxe.ExpectColumnValuesToBeBetween(column="recorded_on", max_value=LATEST_DAY),
            "recorded_not_in_future",
            "WHMCS did not record the payment on a day still to come (its whole ledger is read, "
            "so no window applies).",
        ),
        _named(
            gxe.ExpectColumnValuesToBeBetween(column="fees_minor", min_value=0),
            "fees_not_negative",
            "Recorded fees are not negative.",
        ),
        _amount_bounds(),
    ]


SUITES: dict[str, Callable[[], list[gxe.Expectation]]] = {
    "bank_transactions": bank_transactions,
    "gocardless_payments": gocardless_payments,
    "stripe_transactions": stripe_transactions,
    "payouts": payouts,
    "whmcs_invoices": whmcs_invoices,
    "whmcs_transactions": whmcs_transactions,
}


def build_suite(name: str) -> gx.ExpectationSuite:
    """A fresh suite object for `name`."""
    return gx.ExpectationSuite(name=name, expectations=SUITES[name]())


def suite_document(name: str) -> dict[str, Any]:
    """The suite as JSON without GX's random ids: what `expectations/json/` holds."""
    document: dict[str, Any] = dict(build_suite(name).to_json_dict())
    document.pop("id", None)
    document["expectations"] = [
        {k: v for k, v in expectation.items() if k != "id"}
        for expectation in document["expectations"]
    ]
    return document
