"""Reconcile a tenant's window: read the loaded state, run the matching engine, store the
results so that re-running the same window gives the same tables.

State carries across windows:

* every open invoice is a candidate, whenever it was issued;
* a payment a person allocated is not given to the engine at all;
* an allocation made for a payment outside this window, and not yet reflected in WHMCS, is
  taken off its invoice's balance before the engine sees it, so no invoice is allocated twice
  across runs; what WHMCS already records (same invoice and transid) is reflected in its balance;
* this window's own earlier engine proposals that changed are reversed and appended anew
  (`tasks.decisions`: allocations are append-only); proposals already applied to WHMCS and
  decisions made by people are never touched.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from recon.canonical import split_transaction_ref, transaction_ref
from recon.db.models import (
    Allocation,
    Invoice,
    Payout,
    PayoutLine,
    RecordedPayment,
    Transaction,
)
from recon.db.tenancy import tenant_session
from recon.matching.config import MatchConfig, config_from_mapping
from recon.matching.engine import match
from recon.matching.frames import MatchResult
from recon.matching.io import inputs_from_frames
from recon.matching.validate import prepare_transactions
from recon.money import format_amount
from recon.review.ledger import held_by_invoice, lock_books, whmcs_view
from recon.tenants import TenantSettings
from tasks.cover import wait_for_cover
from tasks.decisions import (
    RECORDED_RULE_PREFIX,
    live_allocations,
    store_allocations,
    without_vetoed,
)
from tasks.exception_store import store_exceptions
from tasks.payout_links import evidence_days, evidence_frame, store_payout_matches
from tasks.transids import engine_counterparty, engine_reference, transid_aliases

log = logging.getLogger("recon.reconcile")

PAYOUT_MARGIN_DAYS = 7


@dataclass(frozen=True)
class ReconcileSummary:
    """Counts and sums of what a reconcile step stored."""

    transactions: int
    invoices: int
    allocations_auto: int
    allocations_review: int
    exceptions: int
    allocated_minor: dict[str, int]
    stats: dict[str, Any]
    allocations_added: int = 0
    allocations_reversed: int = 0
    exceptions_opened: int = 0
    exceptions_closed: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent reading the frames, matching and storing, for the run's counts."""


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _window_transactions(session: Session, window: tuple[dt.date, dt.date]) -> list[Transaction]:
    return list(
        session.scalars(
            select(Transaction)
            .where(Transaction.booked_on >= window[0], Transaction.booked_on <= window[1])
            .order_by(Transaction.source, Transaction.account_ref, Transaction.source_id)
        )
    )


def payouts_read(window: tuple[dt.date, dt.date]) -> tuple[dt.date, dt.date]:
    """The arrival days of the payouts a window's run reads: the window and
    `PAYOUT_MARGIN_DAYS` on each side."""
    margin = dt.timedelta(days=PAYOUT_MARGIN_DAYS)
    return window[0] - margin, window[1] + margin


def build_frames(
    session: Session, window: tuple[dt.date, dt.date], recorded_margin_days: int = 7
) -> tuple[dict[str, pd.DataFrame], set[str]]:
    """The engine's §4.3 text frames for the window, and the transaction refs it will decide.

    WHMCS's recorded payments come from the window widened by `recorded_margin_days` on both
    sides (the engine's `recorded_window_days`): money booked near an edge finds the payment
    staff recorded just across it, as one run over both windows would.
    """
    transactions = _window_transactions(session, window)
    allocations = live_allocations(session)
    decided_by_people = {a.transaction_ref for a in allocations if a.origin != "engine"}
    window_refs = {
        transaction_ref(t.source, t.account_ref, t.source_id)
        for t in transactions
        if t.status == "booked"
    } - decided_by_people
    recorded = list(session.scalars(select(RecordedPayment)))
    aliases = transid_aliases(session)  # a Stripe row is recorded under its charge's id
    # Money placed outside this run (other windows, people) caps the invoices it sits on; the
    # WHMCS payments it confirms (recorded_* rules) or a person placed are not confirmed again.
    held_elsewhere = held_by_invoice(
        allocations, whmcs_view(session), aliases, skip_refs=window_refs
    )
    confirmations = [
        a
        for a in allocations
        if a.transaction_ref not in window_refs
        and (a.rule.startswith(RECORDED_RULE_PREFIX) or a.origin != "engine")
    ]
    # Plain rows, not ORM objects: building 50,000 Invoice instances was most of the read.
    invoices = session.execute(
        select(
            Invoice.invoice_id, Invoice.invoice_num, Invoice.client_id, Invoice.client_name,
            Invoice.company_name, Invoice.issued_on, Invoice.due_on, Invoice.total_minor,
            Invoice.balance_minor, Invoice.currency, Invoice.status,
        ).order_by(Invoice.invoice_id)
    ).all()  # fmt: skip
    invoice_rows = [
        {
            "invoice_id": i.invoice_id,
            "invoice_num": _text(i.invoice_num),
            "client_id": i.client_id,
            "client_name": _text(i.client_name),
            "company_name": _text(i.company_name),
            "issued_on": i.issued_on.isoformat(),
            "due_on": (i.due_on or i.issued_on).isoformat(),
            "total": format_amount(i.total_minor, i.currency),
            "balance": format_amount(i.balance_minor, i.currency),
            "currency": i.currency,
            "status": i.status,
            # caps what the engine may allocate, never how it scores (recon.matching.validate)
            "held": format_amount(held_elsewhere.get(i.invoice_id, 0), i.currency),
        }
        for i in invoices
    ]
    txn_rows: list[dict[str, str]] = []
    fee_refs: dict[str, str] = {}
    for t in transactions:
        ref = transaction_ref(t.source, t.account_ref, t.source_id)
        if ref not in window_refs:
            continue
        txn_rows.append(
            {
                "transaction_id": ref,
                "source": t.source,
                "account_id": t.account_ref,
                "booked_on": t.booked_on.isoformat(),
                "amount": format_amount(t.amount_minor, t.currency),
                "currency": t.currency,
                "counterparty": engine_counterparty(t),
                "reference": engine_reference(t),
            }
        )
        if t.fee_minor and t.kind != "fee":
            # Providers net their fee out of the payout; the engine sees it as its own line.
            fee_refs[t.source_id] = f"{ref}:fee"
            txn_rows.append(
                {
                    **txn_rows[-1],
                    "transaction_id": f"{ref}:fee",
                    "amount": format_amount(-t.fee_minor, t.currency),
                    "counterparty": "",
                    "reference": f"{t.source.capitalize()} fee for {t.source_id}",
                }
            )
    confirmed_elsewhere = _confirmed_elsewhere(recorded, confirmations, aliases)
    recorded_from = window[0] - dt.timedelta(days=recorded_margin_days)
    recorded_to = window[1] + dt.timedelta(days=recorded_margin_days)
    recorded_rows = [
        {
            "whmcs_txn_id": r.whmcs_txn_id,
            "invoice_id": _text(r.invoice_id),
            "recorded_on": r.recorded_on.isoformat(),
            "amount": format_amount(r.amount_minor, r.currency),
            "fees": format_amount(r.fees_minor, r.currency),
            "currency": r.currency,
            "gateway": _text(r.gateway),
            "transid": _text(r.transid),
        }
        for r in recorded
        if recorded_from <= r.recorded_on <= recorded_to
        and r.invoice_id
        and r.whmcs_txn_id not in confirmed_elsewhere
    ]
    arrivals = payouts_read(window)
    payouts = list(
        session.scalars(
            select(Payout).where(Payout.arrival_on >= arrivals[0], Payout.arrival_on <= arrivals[1])
        )
    )
    payout_ids = {p.payout_id for p in payouts}
    ref_of = {
        (t.source, t.source_id): transaction_ref(t.source, t.account_ref, t.source_id)
        for t in transactions
    }
    line_rows: list[dict[str, str]] = []
    known = {row["transaction_id"] for row in txn_rows}
    lines_of: dict[str, list[dict[str, str]]] = defaultdict(list)
    cut = set()  # payouts with a line this window does not decide: not broken down here
    lines = select(PayoutLine.payout_id, PayoutLine.source, PayoutLine.transaction_id)
    for line in session.execute(lines.order_by(PayoutLine.id)):
        if line.payout_id not in payout_ids:
            continue
        source = "gocardless" if line.source == "gocardless_payments" else line.source
        line_ref = ref_of.get((source, line.transaction_id))
        if line_ref is None or line_ref not in known:
            cut.add(line.payout_id)
            continue
        lines_of[line.payout_id].append({"payout_id": line.payout_id, "transaction_id": line_ref})
        if line.transaction_id in fee_refs:
            lines_of[line.payout_id].append(
                {"payout_id": line.payout_id, "transaction_id": fee_refs[line.transaction_id]}
            )
    for payout_id, rows in lines_of.items():
        if payout_id not in cut:
            line_rows += rows
    payout_rows = [
        {
            "payout_id": p.payout_id,
            "source": "gocardless" if p.source == "gocardless_payments" else p.source,
            "arrival_on": p.arrival_on.isoformat(),
            "amount": format_amount(p.amount_minor, p.currency),
            "currency": p.currency,
            "status": p.status,
        }
        for p in payouts
    ]
    frames = {
        "invoices": pd.DataFrame(invoice_rows, columns=list(_INVOICE_COLUMNS), dtype="str"),
        "transactions": pd.DataFrame(txn_rows, columns=list(_TXN_COLUMNS), dtype="str"),
        "recorded": pd.DataFrame(recorded_rows, columns=list(_RECORDED_COLUMNS), dtype="str"),
        "payouts": pd.DataFrame(payout_rows, columns=list(_PAYOUT_COLUMNS), dtype="str"),
        "payout_lines": pd.DataFrame(
            line_rows, columns=["payout_id", "transaction_id"], dtype="str"
        ),
        # money around the window, read only: payouts and payments near its edges are judged
        "evidence": evidence_frame(
            session, window, window_refs, evidence_days(recorded_margin_days, PAYOUT_MARGIN_DAYS)
        ),
    }
    return frames, window_refs


def _confirmed_elsewhere(
    recorded: list[RecordedPayment],
    confirmations: list[Allocation],
    aliases: dict[str, tuple[str, ...]],
) -> set[str]:
    """WHMCS payments that money outside the window already confirms (by their `transid`, else
    the earliest of the invoice's payments of the confirmed amount): not confirmed twice."""
    by_invoice: dict[str, list[RecordedPayment]] = defaultdict(list)
    for r in sorted(recorded, key=lambda r: (r.recorded_on, r.whmcs_txn_id)):
        if r.invoice_id:
            by_invoice[r.invoice_id].append(r)
    taken: set[str] = set()
    for allocation in confirmations:
        ids = {split_transaction_ref(allocation.transaction_ref)[2]}
        ids.update(aliases.get(allocation.transaction_ref, ()))
        rows = [r for r in by_invoice.get(allocation.invoice_id, []) if r.whmcs_txn_id not in taken]
        amount = allocation.amount_minor
        match = next((r for r in rows if r.transid and r.transid in ids), None) or next(
            (r for r in rows if amount in (r.amount_minor, r.amount_minor - r.fees_minor)), None
        )
        if match is not None:
            taken.add(match.whmcs_txn_id)
    return taken


_INVOICE_COLUMNS = ("invoice_id", "invoice_num", "client_id", "client_name", "company_name",
                    "issued_on", "due_on", "total", "balance", "currency", "status", "held")  # fmt: skip
_TXN_COLUMNS = ("transaction_id", "source", "account_id", "booked_on", "amount", "currency",
                "counterparty", "reference")  # fmt: skip
_RECORDED_COLUMNS = ("whmcs_txn_id", "invoice_id", "recorded_on", "amount", "fees", "currency",
                     "gateway", "transid")  # fmt: skip
_PAYOUT_COLUMNS = ("payout_id", "source", "arrival_on", "amount", "currency", "status")


def matching_config(settings: TenantSettings) -> MatchConfig:
    """The engine's thresholds and numbering format from the tenant's settings."""
    values: dict[str, Any] = {
        "auto_threshold": settings.auto_threshold,
        "review_threshold": settings.review_threshold,
    }
    if settings.whmcs.invoice_number_format:
        values["invoice_number_format"] = settings.whmcs.invoice_number_format
    return config_from_mapping(values, "tenant settings")


def run_engine(frames: dict[str, pd.DataFrame], config: MatchConfig) -> MatchResult:
    """The matching engine on the window's frames."""
    inputs = inputs_from_frames(
        frames["invoices"],
        frames["transactions"],
        frames["recorded"],
        frames["payouts"],
        frames["payout_lines"],
    )
    if "evidence" in frames:
        inputs = replace(inputs, evidence=prepare_transactions(frames["evidence"], "evidence"))
    return match(inputs, config)


def reconcile_window(
    engine: Engine,
    tenant_id: str,
    window: tuple[dt.date, dt.date],
    *,
    run_id: str,
    config: MatchConfig | None = None,
) -> ReconcileSummary:
    """Read, match and store in one transaction: a crash leaves the previous results."""
    with tenant_session(engine, tenant_id) as session:
        lock_books(session, tenant_id)  # a person's allocation waits for this run, or it for them
        config = config or MatchConfig()
        clock = time.perf_counter()
        frames, window_refs = build_frames(session, window, config.recorded_window_days)
        timings = {"read": time.perf_counter() - clock}
        clock = time.perf_counter()
        result = without_vetoed(session, run_engine(frames, config), window_refs)
        # payout judgements wait for the stored fetches to hold the days they need
        result, waiting = wait_for_cover(session, result, frames, config, payouts_read(window))
        timings["match"] = time.perf_counter() - clock
        clock = time.perf_counter()
        allocations = store_allocations(session, tenant_id, run_id, result, window_refs)
        exceptions = store_exceptions(
            session, tenant_id, run_id, result, window_refs, waiting.credits
        )
        store_payout_matches(session, tenant_id, run_id, result, window_refs)
    timings["store"] = time.perf_counter() - clock  # the commit included
    log.info(
        "reconciled %s %s..%s: %d auto, %d review, %d exceptions (%d added, %d reversed, "
        "%d exceptions closed)",
        tenant_id, window[0], window[1], allocations.auto, allocations.review, exceptions.raised,
        allocations.added, allocations.reversed, exceptions.closed,
    )  # fmt: skip
    return ReconcileSummary(
        transactions=len(frames["transactions"]),
        invoices=len(frames["invoices"]),
        allocations_auto=allocations.auto,
        allocations_review=allocations.review,
        exceptions=exceptions.raised,
        allocated_minor=allocations.allocated_minor,
        stats=dict(result.stats),
        allocations_added=allocations.added,
        allocations_reversed=allocations.reversed,
        exceptions_opened=exceptions.opened + exceptions.reopened,
        exceptions_closed=exceptions.closed,
        timings={stage: round(seconds, 3) for stage, seconds in timings.items()},
    )
