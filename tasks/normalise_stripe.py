"""Landed Stripe pages → canonical batches: TRANSACTIONS, PAYOUTS and PAYOUT_LINES.

One landed fetch holds every page of a window (`StripeClient.fetch_window`: payouts, the balance
transactions of each payout, the window's balance transactions, charges, refunds, disputes, and
the detail objects retrieved by id), so a window replays whole or not at all.

* Each balance transaction created in the window, other than a payout's own, is one
  TRANSACTIONS row (`STRIPE_TRANSACTIONS`) keyed by its own `txn_…` id, so a charge with several
  (its charge, refunds, a dispute and the dispute's reversal) loads each: `charge_id` is the
  charge it belongs to (its source `ch_…`, or the charge of its `re_…`/`dp_…` source) and
  `payment_intent` that charge's, which is how the engine links it to a WHMCS `transid`;
  `amount_minor` the signed gross amount, `fee_minor` the fee, `booked_on`/`value_on` the UTC days
  of `created`/`available_on`, `counterparty` the charge's billing name, `reference` the charge's
  description and the WHMCS invoice id of its metadata (a refund or dispute carries its charge's),
  `payout_id` the payout whose `payout=` listing holds it. So `sum(amount_minor - fee_minor)` over
  a payout's lines is what Stripe says the payout should be.
* A payout's own balance transaction (type `payout`) stands for the payout: it is counted, not
  loaded as a transaction; each payout object is one PAYOUTS row.
* Each balance transaction of a payout's listing is one PAYOUT_LINES row (by its `txn_…` id). One
  created before the window (a payout arriving after the window its charges were booked in) is
  only linked: its row belongs to its own window, and the loader fills that row's `payout_id` from
  the line (`tasks.payout_links`), whichever of the two windows loads first.

A record that cannot be loaded (a missing or non-integer amount, a currency that is not ISO 4217,
`net` that is not `amount - fee`, a charge that disagrees with its balance transaction, a detail
record that is malformed or missing) becomes a `Reject` with every reason, so that for each batch
raw records = loaded + quarantined.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import pandas as pd
from sqlalchemy import Engine

from connectors.pages import Page
from connectors.stripe import (
    LIST_ENDPOINTS,
    OBJECT_ENDPOINTS,
    BalanceTransaction,
    Charge,
    Dispute,
    Malformed,
    Payout,
    Refund,
    StripeClient,
    balance_transaction,
    charge,
    dispute,
    parse_list_page,
    parse_object,
    payout,
    refund,
)
from recon.canonical import PAYOUT_LINES, PAYOUTS, STRIPE_TRANSACTIONS, Dataset
from recon.db.tenancy import tenant_session
from tasks.land import FetchScope, LandedPages, StoredPage, land_or_replay
from tasks.load import (
    Batch,
    LoadResult,
    Reject,
    load_batch_in,
    quarantine_key,
)

PROVIDER = "stripe"
DATASET = "activity"
"""The landed dataset: everything `StripeClient.fetch_window` fetches for one window."""
PAYOUT_TYPES = frozenset({"payout"})
_KEY_CHUNK = 300
JSON = dict[str, Any]


def window_scope(account_ref: str, window_from: dt.date, window_to: dt.date) -> FetchScope:
    """The landing scope of one Stripe account over a window of UTC days (both inclusive)."""
    return FetchScope(PROVIDER, account_ref, DATASET, window_from, window_to)


def land_window(
    engine: Engine,
    tenant_id: str,
    client: StripeClient,
    scope: FetchScope,
    *,
    refetch: bool = False,
    run_id: str | None = None,
) -> LandedPages:
    """Replay the landed pages covering `scope`, or fetch the window (landing every page)."""

    def fetch(on_page: Callable[[Page], None]) -> None:
        client.fetch_window(scope.window_from, scope.window_to, on_page)

    return land_or_replay(engine, tenant_id, scope, fetch, refetch=refetch, run_id=run_id)


@dataclass
class StripeBatches:
    """A window's canonical batches, and how its raw balance transactions were accounted for."""

    transactions: Batch
    payouts: Batch
    payout_lines: Batch
    balance_transactions: int
    """Distinct raw balance transaction records in the pages."""
    payout_balance_transactions: int
    """Of which are payouts' own (type `payout`): represented by PAYOUTS, not loaded."""
    linked_elsewhere: int = 0
    """Of which were created outside the window (listed by a payout of it): only linked."""

    def batches(self) -> list[Batch]:
        """The three batches, in load order."""
        return [self.transactions, self.payouts, self.payout_lines]


# -- reading the pages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    parsed: Any
    record: JSON
    raw_payload_id: int


@dataclass
class _Seen:
    """First occurrence of each record (by id), with its raw form and the page it came from."""

    entries: dict[str, _Entry]

    @classmethod
    def empty(cls) -> _Seen:
        return cls({})

    def add(self, key: str, parsed: Any, record: JSON, raw_payload_id: int) -> None:
        self.entries.setdefault(key, _Entry(parsed, record, raw_payload_id))

    def get(self, key: str) -> Any:
        found = self.entries.get(key)
        return None if found is None else found.parsed


@dataclass
class _Window:
    bts: _Seen
    charges: _Seen
    refunds: _Seen
    disputes: _Seen
    payouts: _Seen
    lines: list[tuple[str, JSON, int]]  # (payout id, raw balance transaction, raw payload id)


_PARSERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "balance_transactions": balance_transaction,
    "charges": charge,
    "refunds": refund,
    "disputes": dispute,
    "payouts": payout,
}


def _read(pages: Iterable[StoredPage]) -> _Window:
    window = _Window(_Seen.empty(), _Seen.empty(), _Seen.empty(), _Seen.empty(), _Seen.empty(), [])
    seen = {
        "balance_transactions": window.bts,
        "charges": window.charges,
        "refunds": window.refunds,
        "disputes": window.disputes,
        "payouts": window.payouts,
    }
    for stored in pages:
        page = stored.page
        if page.endpoint in LIST_ENDPOINTS:
            resource = LIST_ENDPOINTS[page.endpoint]
            records = parse_list_page(page.body).records
        elif page.endpoint in OBJECT_ENDPOINTS:
            resource = OBJECT_ENDPOINTS[page.endpoint]
            records = [parse_object(page.body)]
        else:
            raise ValueError(f"a landed Stripe page has an unknown endpoint {page.endpoint!r}")
        for record in records:
            parsed = _PARSERS[resource](record)
            seen[resource].add(_record_key(record), parsed, record, stored.raw_payload_id)
        payout_ids = parse_qs(page.request_key).get("payout")
        if resource == "balance_transactions" and payout_ids:
            window.lines += [(payout_ids[0], record, stored.raw_payload_id) for record in records]
    return window


def _record_key(record: Mapping[str, Any]) -> str:
    raw_id = record.get("id")
    return raw_id if isinstance(raw_id, str) and raw_id else quarantine_key(dict(record))


# -- normalising -----------------------------------------------------------------------------------


def normalise(
    pages: Sequence[StoredPage],
    account_ref: str,
    window: tuple[dt.date, dt.date] | None = None,
) -> StripeBatches:
    """The canonical batches of a window's landed pages (pure: no call, no database).

    `window` (UTC days, both inclusive) is the window the pages were fetched for; without it, the
    `created` bounds of the pages' balance transaction listings say it."""
    window_read = _read(pages)
    days = window if window is not None else fetched_window(pages)
    payout_of = {
        str(record["id"]): payout_id
        for payout_id, record, _ in window_read.lines
        if isinstance(record.get("id"), str)
    }
    transactions, skipped, elsewhere = _transactions(window_read, payout_of, account_ref, days)
    result = StripeBatches(
        transactions=transactions,
        payouts=_payouts(window_read, account_ref),
        payout_lines=_payout_lines(window_read, account_ref),
        balance_transactions=len(window_read.bts.entries),
        payout_balance_transactions=skipped,
        linked_elsewhere=elsewhere,
    )
    accounted = len(transactions.rows) + len(transactions.rejects) + skipped + elsewhere
    if accounted != result.balance_transactions:  # pragma: no cover - an invariant, kept on
        raise AssertionError(
            f"{result.balance_transactions} raw balance transactions but {accounted} accounted for"
        )
    return result


def fetched_window(pages: Iterable[StoredPage]) -> tuple[dt.date, dt.date] | None:
    """The UTC days a fetch covered, from the `created` bounds of its balance transaction
    listings (`created[gte]`, `created[lt]`); None when no page says."""
    starts: list[int] = []
    ends: list[int] = []
    for stored in pages:
        if stored.page.endpoint != "/v1/balance_transactions":
            continue
        query = parse_qs(stored.page.request_key)
        gte, lt = query.get("created[gte]"), query.get("created[lt]")
        if gte and lt and gte[0].isdigit() and lt[0].isdigit():
            starts.append(int(gte[0]))
            ends.append(int(lt[0]))
    if not starts:
        return None
    first = dt.datetime.fromtimestamp(min(starts), dt.UTC).date()
    last = dt.datetime.fromtimestamp(max(ends) - 1, dt.UTC).date()
    return first, last


def _outside(created: dt.datetime | None, days: tuple[dt.date, dt.date] | None) -> bool:
    return days is not None and created is not None and not days[0] <= created.date() <= days[1]


def _transactions(
    window: _Window,
    payout_of: Mapping[str, str],
    account_ref: str,
    days: tuple[dt.date, dt.date] | None,
) -> tuple[Batch, int, int]:
    rows: list[JSON] = []
    rejects: list[Reject] = []
    skipped = elsewhere = 0
    for key, entry in window.bts.entries.items():
        parsed, raw_id = entry.parsed, entry.raw_payload_id
        if isinstance(parsed, Malformed):
            if parsed.record.get("type") in PAYOUT_TYPES:
                skipped += 1
            elif _outside(parsed.created, days):
                elsewhere += 1  # its own window quarantines it
            else:
                rejects.append(_reject(parsed, account_ref, raw_id, f"txn:{key}"))
            continue
        bt: BalanceTransaction = parsed
        if bt.type in PAYOUT_TYPES:
            skipped += 1
            continue
        if _outside(bt.created, days):
            elsewhere += 1  # listed by a payout of this window: a PAYOUT_LINES row links it
            continue
        reasons: list[str] = []
        found = _details(bt, window, reasons)
        if reasons:
            flagged = Malformed(
                "balance_transaction",
                bt.id,
                tuple(reasons),
                entry.record,
                bt.created,
                bt.amount_minor,
                bt.currency,
            )
            rejects.append(_reject(flagged, account_ref, raw_id, f"txn:{bt.id}"))
            continue
        rows.append(
            {
                "source": PROVIDER,
                "account_ref": account_ref,
                "source_id": bt.id,
                "kind": kind_of(bt),
                "status": "pending" if bt.status == "pending" else "booked",
                "booked_on": bt.created.date(),
                "value_on": bt.available_on,
                "amount_minor": bt.amount_minor,
                "fee_minor": bt.fee_minor,
                "currency": bt.currency,
                "counterparty": found.counterparty,
                "reference": found.reference,
                "payout_id": payout_of.get(bt.id),
                "charge_id": found.charge_id,
                "payment_intent": found.payment_intent,
                "raw_payload_id": raw_id,
                "net_minor": bt.net_minor,
            }
        )
    frame = _frame(STRIPE_TRANSACTIONS, rows, extra=("net_minor",))
    return Batch(PROVIDER, STRIPE_TRANSACTIONS, frame, rejects), skipped, elsewhere


def kind_of(bt: BalanceTransaction) -> str:
    """charge | refund | dispute | fee | adjustment, from Stripe's type and reporting category."""
    category = bt.reporting_category or ""
    if bt.type in ("charge", "payment") or category == "charge":
        return "charge"
    if bt.type in ("refund", "payment_refund") or category == "refund":
        return "refund"
    if category in ("dispute", "dispute_reversal") or bt.source_id.startswith("dp_"):
        return "dispute"
    if bt.type in ("stripe_fee", "stripe_fx_fee", "tax_fee") or category == "fee":
        return "fee"
    return "adjustment"


@dataclass(frozen=True)
class _Details:
    """What a balance transaction takes from the charge behind it."""

    counterparty: str | None = None
    reference: str | None = None
    charge_id: str | None = None
    payment_intent: str | None = None


def _details(bt: BalanceTransaction, window: _Window, reasons: list[str]) -> _Details:
    """Payer, reference, charge id and payment intent from the charge behind a balance
    transaction."""
    source = bt.source_id
    if source.startswith("re_"):
        found = _detail(window.refunds, "refund", source, reasons)
        charge_id = found.charge_id if isinstance(found, Refund) else None
    elif source.startswith("dp_"):
        found_dispute = _detail(window.disputes, "dispute", source, reasons)
        charge_id = found_dispute.charge_id if isinstance(found_dispute, Dispute) else None
    elif source.startswith("ch_"):
        charge_id = source
    else:
        return _Details(reference=bt.description)
    if charge_id is None:
        return _Details()
    found_charge = _detail(window.charges, "charge", charge_id, reasons)
    if not isinstance(found_charge, Charge):
        return _Details(charge_id=charge_id)
    if kind_of(bt) == "charge":
        _check_charge(bt, found_charge, reasons)
    return _Details(
        found_charge.customer_name,
        reference_of(found_charge),
        charge_id,
        found_charge.payment_intent,
    )


def _detail(seen: _Seen, what: str, object_id: str, reasons: list[str]) -> Any:
    found = seen.get(object_id)
    if found is None:
        reasons.append(f"{what} {object_id} is not among the fetched records")
    elif isinstance(found, Malformed):
        reasons.append(f"{what} {object_id} is malformed: {'; '.join(found.reasons)}")
        return None
    return found


def _check_charge(bt: BalanceTransaction, found: Charge, reasons: list[str]) -> None:
    if found.balance_transaction is not None and found.balance_transaction != bt.id:
        reasons.append(
            f"charge {found.id} names balance transaction {found.balance_transaction}, not {bt.id}"
        )
    if bt.converted:
        return  # presentment and settlement amounts differ by the exchange rate
    if found.currency != bt.currency or found.amount_minor != bt.amount_minor:
        reasons.append(
            f"charge {found.id} is {found.amount_minor} {found.currency} but its balance "
            f"transaction is {bt.amount_minor} {bt.currency}"
        )


def reference_of(found: Charge) -> str | None:
    """A charge's description, and its WHMCS invoice id when the description lacks it."""
    parts = [found.description] if found.description else []
    if found.invoice_id and not (found.description and found.invoice_id in found.description):
        parts.append(f"invoice {found.invoice_id}")
    return " | ".join(parts) or None


def _reject(parsed: Malformed, account_ref: str, raw_id: int, row_key: str) -> Reject:
    return Reject(
        row_key=row_key,
        reasons=parsed.reasons,
        record=parsed.record,
        account_ref=account_ref,
        booked_on=parsed.created.date() if parsed.created is not None else None,
        amount_minor=parsed.amount_minor,
        currency=parsed.currency,
        raw_payload_id=raw_id,
    )


def _payouts(window: _Window, account_ref: str) -> Batch:
    rows: list[JSON] = []
    rejects: list[Reject] = []
    for key, entry in window.payouts.entries.items():
        parsed, raw_id = entry.parsed, entry.raw_payload_id
        if isinstance(parsed, Malformed):
            rejects.append(_reject(parsed, account_ref, raw_id, f"payout:{key}"))
            continue
        found: Payout = parsed
        rows.append(
            {
                "source": PROVIDER,
                "payout_id": found.id,
                "arrival_on": found.arrival_on,
                "amount_minor": found.amount_minor,
                "currency": found.currency,
                "status": found.status,
                "raw_payload_id": raw_id,
            }
        )
    return Batch(PROVIDER, PAYOUTS, _frame(PAYOUTS, rows), rejects)


def _payout_lines(window: _Window, account_ref: str) -> Batch:
    rows: dict[tuple[str, str], JSON] = {}
    rejects: list[Reject] = []
    for payout_id, record, raw_id in window.lines:
        if record.get("type") in PAYOUT_TYPES:
            continue
        transaction_id = record.get("id")
        if not isinstance(transaction_id, str) or not transaction_id:
            rejects.append(
                Reject(
                    row_key=f"line:{payout_id}:{quarantine_key(dict(record))}",
                    reasons=("the balance transaction has no id",),
                    record=dict(record),
                    account_ref=account_ref,
                    raw_payload_id=raw_id,
                )
            )
            continue
        rows.setdefault(
            (payout_id, transaction_id),
            {
                "source": PROVIDER,
                "payout_id": payout_id,
                "transaction_id": transaction_id,
                "raw_payload_id": raw_id,
            },
        )
    return Batch(PROVIDER, PAYOUT_LINES, _frame(PAYOUT_LINES, list(rows.values())), rejects)


def _frame(dataset: Dataset, rows: list[JSON], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows as a frame: the dataset's columns, lineage, and `extra` columns validation reads."""
    columns = [*dataset.columns, "raw_payload_id", *extra]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.DataFrame(rows, columns=columns)


# -- loading ---------------------------------------------------------------------------------------


def load_window(
    engine: Engine,
    tenant_id: str,
    batches: StripeBatches,
    *,
    account_ref: str,
    through: dt.date | None = None,
    run_id: str | None = None,
) -> list[LoadResult]:
    """Load the three batches in ONE transaction; with `through`, move the watermark with it."""
    watermark = (account_ref, through) if through is not None else None
    with tenant_session(engine, tenant_id) as session:
        return [
            load_batch_in(
                session, tenant_id, batches.transactions, run_id=run_id, watermark=watermark
            ),
            load_batch_in(session, tenant_id, batches.payouts, run_id=run_id),
            load_batch_in(session, tenant_id, batches.payout_lines, run_id=run_id),
        ]


@dataclass(frozen=True)
class WindowRun:
    """What one `sync_window` did."""

    landed: LandedPages
    batches: StripeBatches
    results: list[LoadResult]


def sync_window(
    engine: Engine,
    tenant_id: str,
    client: StripeClient,
    account_ref: str,
    window_from: dt.date,
    window_to: dt.date,
    *,
    refetch: bool = False,
    run_id: str | None = None,
) -> WindowRun:
    """Land (or replay) a window, normalise it and load it: the Stripe part of a run."""
    scope = window_scope(account_ref, window_from, window_to)
    landed = land_window(engine, tenant_id, client, scope, refetch=refetch, run_id=run_id)
    batches = normalise(landed.pages, account_ref, (window_from, window_to))
    results = load_window(
        engine, tenant_id, batches, account_ref=account_ref, through=window_to, run_id=run_id
    )
    return WindowRun(landed, batches, results)
