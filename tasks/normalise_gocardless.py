"""Landed GoCardless pages -> canonical `Batch`es for `tasks.load.load_batch`.

Bank Account Data (`bank_batch`): every line of every `transactions` page becomes a `TRANSACTIONS`
row (source `bank`, `account_ref` = the GoCardless account id, kind `payment`, status `booked` or
`pending`, money in minor units, the reference exactly as the bank sent it, `raw_payload_id` for
lineage) keyed by `connectors.gocardless.parse_transactions`'s source id, or a `Reject` naming
every reason it cannot load ("amount missing", "currency 'EURO' is not ISO 4217", "bookingDate
'31/10/2026' is not ISO").

GoCardless Payments (`payments_batches`): payments -> `TRANSACTIONS` (source `gocardless`,
`account_ref` = the creditor, booked on the charge date, the payer's name through mandate ->
customer, payout id from `links.payout`); payouts -> `PAYOUTS`, and their `deducted_fees` ->
one `TRANSACTIONS` row of kind `fee` (`fee:<payout id>`, negative) so that a payout equals the sum
of its lines; payout items (or, for payouts GoCardless no longer itemises, the payments' links)
-> `PAYOUT_LINES` (only `payment_paid_out` items are linked: fees come from the payout's own
`deducted_fees`; refund and other item types are not linked yet). Payment statuses are folded to
at most 16 characters (`PAYMENT_STATUS`). A bank reject keeps the raw line whole under
`transaction`, with the list it came from (`booked`/`pending`) under `list`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

import pandas as pd

from connectors.gocardless import IdPolicy, parse_transactions
from recon.canonical import PAYOUT_LINES, PAYOUTS, TRANSACTIONS, Dataset
from recon.errors import ReconError
from recon.money import MoneyError, normalise_currency
from tasks.land import StoredPage
from tasks.load import Batch, Reject, quarantine_key

BANK_PROVIDER = "gocardless"
PAYMENTS_PROVIDER = "gocardless_payments"
BANK_SOURCE = "bank"
PAYMENTS_SOURCE = "gocardless"
BANK_ENDPOINT = "accounts/transactions"
PAYMENT_STATUS = {
    "pending_customer_approval": "pending",
    "pending_submission": "pending",
    "submitted": "pending",
    "confirmed": "booked",
    "paid_out": "booked",
    "cancelled": "cancelled",
    "customer_approval_denied": "failed",
    "failed": "failed",
    "charged_back": "charged_back",
}
"""GoCardless payment status -> canonical status: money collected is `booked` (as a bank line
is), money on its way `pending`; payments that will never be money keep their own word."""

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STATUS_LENGTH = 16


class NormaliseError(ReconError):
    """A landed page cannot be normalised at all (wrong endpoint or shape)."""


def _frame(dataset: Dataset, rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = [*dataset.columns, "raw_payload_id"]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.DataFrame(rows, columns=columns)


# -- Bank Account Data -----------------------------------------------------------------------------


def bank_batch(
    pages: Sequence[StoredPage], account_id: str, *, id_policy: IdPolicy = "content"
) -> Batch:
    """The `TRANSACTIONS` batch of one account's landed `transactions` pages."""
    rows: dict[str, dict[str, Any]] = {}
    rejects: dict[str, Reject] = {}
    for stored in pages:
        page = stored.page
        if page.endpoint != BANK_ENDPOINT:
            raise NormaliseError(
                f"raw payload {stored.raw_payload_id} is a {page.endpoint!r} page, not "
                f"{BANK_ENDPOINT!r}; it cannot be read as bank transactions."
            )
        records, malformed = parse_transactions(page.body, account_id, id_policy=id_policy)
        for r in records:
            rows[r.source_id] = {
                "source": BANK_SOURCE,
                "account_ref": account_id,
                "source_id": r.source_id,
                "kind": "payment",
                "status": r.status,
                "booked_on": r.booked_on,
                "value_on": r.value_on,
                "amount_minor": r.amount_minor,
                "fee_minor": 0,
                "currency": r.currency,
                "counterparty": r.counterparty,
                "reference": r.reference,
                "payout_id": None,
                "raw_payload_id": stored.raw_payload_id,
            }
        for m in malformed:
            rejects[m.row_key] = Reject(
                row_key=m.row_key,
                reasons=m.reasons,
                record={"list": m.status, "transaction": m.record},
                account_ref=account_id,
                booked_on=m.booked_on,
                amount_minor=m.amount_minor,
                currency=m.currency,
                raw_payload_id=stored.raw_payload_id,
            )
    return Batch(
        BANK_PROVIDER,
        TRANSACTIONS,
        _frame(TRANSACTIONS, list(rows.values())),
        list(rejects.values()),
    )


# -- GoCardless Payments ---------------------------------------------------------------------------


def payments_batches(pages: Sequence[StoredPage], creditor_id: str) -> list[Batch]:
    """`TRANSACTIONS`, `PAYOUTS` and `PAYOUT_LINES` batches from one window's landed pages."""
    by_resource: dict[str, list[tuple[StoredPage, Any]]] = {}
    itemised: dict[str, list[tuple[StoredPage, Any]]] = {}
    for stored in pages:
        resource = stored.page.endpoint
        items = _items(stored, resource)
        if resource == "payout_items":
            payout_id = dict(parse_qsl(stored.page.request_key)).get("payout", "")
            itemised.setdefault(payout_id, []).extend((stored, i) for i in items)
        else:
            by_resource.setdefault(resource, []).extend((stored, i) for i in items)
    names = _payer_names(item for _, item in by_resource.get("customers", []))
    mandates = {
        str(m.get("id")): _text(_links(m).get("customer"))
        for _, m in by_resource.get("mandates", [])
        if isinstance(m, dict)
    }
    transactions: dict[str, dict[str, Any]] = {}
    rejects: dict[str, Reject] = {}
    for stored, item in by_resource.get("payments", []):
        row, reject = _payment(item, stored, creditor_id, names, mandates)
        if row is not None:
            transactions[row["source_id"]] = row
        if reject is not None:
            rejects[reject.row_key] = reject
    payouts: dict[str, dict[str, Any]] = {}
    payout_rejects: dict[str, Reject] = {}
    for stored, item in by_resource.get("payouts", []):
        row, reject, fee = _payout(item, stored, creditor_id)
        if row is not None:
            payouts[row["payout_id"]] = row
        if fee is not None:
            transactions[fee["source_id"]] = fee
        if reject is not None:
            payout_rejects[reject.row_key] = reject
    lines = _payout_lines(itemised, transactions)
    return [
        Batch(
            PAYMENTS_PROVIDER,
            TRANSACTIONS,
            _frame(TRANSACTIONS, list(transactions.values())),
            list(rejects.values()),
        ),
        Batch(
            PAYMENTS_PROVIDER,
            PAYOUTS,
            _frame(PAYOUTS, list(payouts.values())),
            list(payout_rejects.values()),
        ),
        Batch(PAYMENTS_PROVIDER, PAYOUT_LINES, _frame(PAYOUT_LINES, lines)),
    ]


def _items(stored: StoredPage, resource: str) -> list[Any]:
    try:
        document = json.loads(stored.page.body)
    except ValueError:
        raise NormaliseError(
            f"raw payload {stored.raw_payload_id} ({resource}) is not valid JSON."
        ) from None
    items = document.get(resource) if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise NormaliseError(
            f"raw payload {stored.raw_payload_id} has no {resource!r} list; it cannot be read."
        )
    return items


def _payer_names(customers: Iterable[Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for customer in customers:
        if not isinstance(customer, dict):
            continue
        person = " ".join(
            str(customer.get(k)).strip() for k in ("given_name", "family_name") if customer.get(k)
        )
        name = str(customer.get("company_name") or "").strip() or person
        if name:
            names[str(customer.get("id"))] = name
    return names


def _payment(
    item: Any,
    stored: StoredPage,
    creditor_id: str,
    names: Mapping[str, str],
    mandates: Mapping[str, str],
) -> tuple[dict[str, Any] | None, Reject | None]:
    record = item if isinstance(item, dict) else {"value": item}
    reasons: list[str] = [] if isinstance(item, dict) else ["record is not a JSON object"]
    links = _links(record)
    payment_id = _text(record.get("id"))
    if not payment_id and isinstance(item, dict):
        reasons.append("id missing")
    currency = _currency(record.get("currency"), reasons)
    amount = _minor_units(record.get("amount"), "amount", reasons)
    charged = _iso(record.get("charge_date"), "charge_date", reasons)
    status = _status(record.get("status"), reasons)
    account = _text(links.get("creditor")) or creditor_id
    if reasons:
        return None, Reject(
            row_key=f"payment:{payment_id}" if payment_id else quarantine_key(record),
            reasons=tuple(reasons),
            record=record,
            account_ref=account,
            booked_on=charged,
            amount_minor=amount,
            currency=currency,
            raw_payload_id=stored.raw_payload_id,
        )
    customer = mandates.get(_text(links.get("mandate")), "")
    parts = [_text(record.get("reference")), _text(record.get("description"))]
    reference = " | ".join(dict.fromkeys(p for p in parts if p)) or None
    return {
        "source": PAYMENTS_SOURCE,
        "account_ref": account,
        "source_id": payment_id,
        "kind": "payment",
        "status": status,
        "booked_on": charged,
        "value_on": None,
        "amount_minor": amount,
        "fee_minor": 0,
        "currency": currency,
        "counterparty": names.get(customer),
        "reference": reference,
        "payout_id": _text(links.get("payout")) or None,
        "raw_payload_id": stored.raw_payload_id,
    }, None


def _payout(
    item: Any, stored: StoredPage, creditor_id: str
) -> tuple[dict[str, Any] | None, Reject | None, dict[str, Any] | None]:
    record = item if isinstance(item, dict) else {"value": item}
    reasons: list[str] = [] if isinstance(item, dict) else ["record is not a JSON object"]
    payout_id = _text(record.get("id"))
    if not payout_id and isinstance(item, dict):
        reasons.append("id missing")
    currency = _currency(record.get("currency"), reasons)
    amount = _minor_units(record.get("amount"), "amount", reasons)
    fees = _minor_units(record.get("deducted_fees", 0), "deducted_fees", reasons)
    arrival = _iso(record.get("arrival_date"), "arrival_date", reasons)
    status = _text(record.get("status"))
    if not status or len(status) > _STATUS_LENGTH:
        reasons.append(f"status {status!r} is not a payout status")
    if reasons:
        return (
            None,
            Reject(
                row_key=f"payout:{payout_id}" if payout_id else quarantine_key(record),
                reasons=tuple(reasons),
                record=record,
                booked_on=arrival,
                amount_minor=amount,
                currency=currency,
                raw_payload_id=stored.raw_payload_id,
            ),
            None,
        )
    row = {
        "source": PAYMENTS_SOURCE,
        "payout_id": payout_id,
        "arrival_on": arrival,
        "amount_minor": amount,
        "currency": currency,
        "status": status,
        "raw_payload_id": stored.raw_payload_id,
    }
    fee = None
    if fees:
        links = _links(record)
        fee = {
            "source": PAYMENTS_SOURCE,
            "account_ref": _text(links.get("creditor")) or creditor_id,
            "source_id": f"fee:{payout_id}",
            "kind": "fee",
            "status": "booked" if status == "paid" else "pending",
            "booked_on": arrival,
            "value_on": None,
            "amount_minor": -(fees or 0),
            "fee_minor": 0,
            "currency": currency,
            "counterparty": "GoCardless",
            "reference": f"GoCardless fees of payout {payout_id}",
            "payout_id": payout_id,
            "raw_payload_id": stored.raw_payload_id,
        }
    return row, None, fee


def _payout_lines(
    itemised: Mapping[str, list[tuple[StoredPage, Any]]],
    transactions: Mapping[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """Payout -> transaction links: from payout items where landed, else from payment links."""
    lines: dict[tuple[str, str], dict[str, Any]] = {}

    def link(payout_id: str, transaction_id: str, raw_payload_id: int) -> None:
        lines[(payout_id, transaction_id)] = {
            "source": PAYMENTS_SOURCE,
            "payout_id": payout_id,
            "transaction_id": transaction_id,
            "raw_payload_id": raw_payload_id,
        }

    for payout_id, entries in itemised.items():
        for stored, item in entries:
            if not isinstance(item, dict) or item.get("type") != "payment_paid_out":
                continue
            payment = _text(_links(item).get("payment"))
            if payment:
                link(payout_id, payment, stored.raw_payload_id)
    for row in transactions.values():
        payout_id = row["payout_id"]
        if not payout_id:
            continue
        if row["kind"] == "fee" or payout_id not in itemised:
            link(payout_id, row["source_id"], row["raw_payload_id"])
    return list(lines.values())


# -- field readers ---------------------------------------------------------------------------------


def _links(record: Mapping[str, Any]) -> dict[str, Any]:
    links = record.get("links")
    return links if isinstance(links, dict) else {}


def _text(value: Any) -> str:
    return str(value).strip() if value not in (None, "") else ""


def _currency(value: Any, reasons: list[str]) -> str | None:
    if value in (None, ""):
        reasons.append("currency missing")
        return None
    try:
        if isinstance(value, str):
            return normalise_currency(value)
    except MoneyError:
        pass
    reasons.append(f"currency {str(value)!r} is not ISO 4217")
    return None


def _minor_units(value: Any, name: str, reasons: list[str]) -> int | None:
    if value is None:
        reasons.append(f"{name} missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        reasons.append(f"{name} {value!r} is not an integer of minor units")
        return None
    return value


def _iso(value: Any, name: str, reasons: list[str]) -> dt.date | None:
    if value in (None, ""):
        reasons.append(f"{name} missing")
        return None
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    reasons.append(f"{name} {str(value)!r} is not ISO")
    return None


def _status(value: Any, reasons: list[str]) -> str | None:
    status = _text(value)
    if status in PAYMENT_STATUS:
        return PAYMENT_STATUS[status]
    if status and len(status) <= _STATUS_LENGTH:
        return status
    reasons.append(f"status {status!r} is not a payment status")
    return None
