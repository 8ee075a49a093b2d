"""The matching engine: from typed inputs to allocations and exceptions (DESIGN §5).

Stages, in order:

1. payouts ↔ bank credits, and each payout against its balance transactions;
2. WHMCS-recorded payments confirmed by transaction id (Stripe, GoCardless);
3. reference numbers and payer names of the remaining incoming payments, once;
4. recorded payments confirmed by invoice and amount (bank transfers entered by staff);
5. passes: candidates → rules → decisions → automatic allocations in booking order, repeated on
   what is left until a pass allocates nothing more (so that applying the result and running
   again adds nothing);
6. suggestions for review and exceptions for every payment not placed automatically;
7. refunds and disputes of Stripe and GoCardless charges, and unbacked recorded payments.

Pure: no I/O, deterministic (every order is by stable keys), money as int64 minor units.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from recon.matching.allocate import asked_shares, fee_gaps, outcomes, serve_in_booking_order
from recon.matching.audit import (
    Recorded,
    confirm_by_invoice,
    confirm_by_transid,
    recorded_arrays,
    recorded_invoice_of,
    report_unbacked,
)
from recon.matching.book import GOCARDLESS, STRIPE, Book, build_book
from recon.matching.candidates import CLOSED, OTHER_CURRENCY, Candidates, build_candidates
from recon.matching.config import MatchConfig
from recon.matching.decide import Decisions, decide, take
from recon.matching.frames import MatchInputs, MatchResult
from recon.matching.ledger import Ledger
from recon.matching.payouts import match_payouts
from recon.matching.prepare import prepare
from recon.matching.references import provider_ids
from recon.matching.rules import RULES
from recon.matching.vec import lexsort

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

_RULE_NAMES = tuple(r.name for r in RULES)


def match(inputs: MatchInputs, config: MatchConfig | None = None) -> MatchResult:
    """Decide which invoice each payment settles; see the module docstring for the stages."""
    cfg = config or MatchConfig()
    clock = _Clock()
    book = build_book(inputs, cfg)
    ledger = Ledger(book)
    clock.lap("index")
    stats: dict[str, Any] = {
        "invoices": book.n_invoices,
        "transactions": book.n_transactions,
        "recorded": len(inputs.recorded),
    }

    payout = match_payouts(book, inputs.payouts, inputs.payout_lines, ledger, inputs.evidence)
    stats.update(payout.stats)
    clock.lap("payouts")

    incoming = book.txn_amount > 0
    rec = recorded_arrays(book, inputs.recorded)
    by_transid = confirm_by_transid(book, rec, ledger, incoming & ~payout.consumed)
    clock.lap("recorded_transid")

    customer = incoming & ~book.provider_credit & ~payout.consumed & ~by_transid
    prep = prepare(book, customer)
    clock.lap("references_and_names")
    by_invoice = confirm_by_invoice(book, prep, rec, ledger, customer)
    residual = customer & ~by_invoice
    clock.lap("recorded_invoice")

    balance = book.inv_balance.copy()
    # Money that allocations the engine does not see already hold on an invoice (`held`) caps
    # what it may allocate, not how it scores: a payment scores the same whatever earlier
    # windows allocated. From the second pass on, held money counts as placed in the first.
    cap = np.maximum(balance - _held(book, inputs.invoices), 0)
    settled_by = np.full(book.n_invoices, -1, dtype=np.int64)
    passes = 0
    final = False  # the last build also makes the suggestions that never become automatic
    while True:
        cands = build_candidates(book, prep, residual, balance, suggestions=final)
        decisions = decide(book, cands)
        auto = decisions.auto
        placed = None
        if auto.any() and passes < cfg.max_passes:
            chosen = take(decisions, auto)
            placed = _allocate_auto(book, ledger, cands, chosen, balance, cap, settled_by)
            passes += 1
        np.minimum(balance, cap, out=balance)
        if placed is not None and placed.any():
            residual &= ~placed
            final = False
            continue
        if final or passes >= cfg.max_passes:
            break
        final = True
    clock.lap("passes")
    stats["passes"] = passes

    _finalise(book, ledger, cands, decisions, residual, balance, settled_by, payout.consumed)
    clock.lap("review_and_exceptions")
    _refunds(book, ledger, rec)
    unbacked = report_unbacked(book, rec, ledger, inputs.evidence)
    stats.update(unbacked.stats)
    clock.lap("audit")

    allocations = ledger.allocations()
    exceptions = ledger.exceptions()
    stats.update(
        {
            "incoming": int(incoming.sum()),
            "outgoing_ignored": int((book.txn_amount < 0).sum()),
            "provider_credits": int((book.provider_credit & incoming).sum()),
            "confirmed_by_transid": int(by_transid.sum()),
            "confirmed_by_invoice": int(by_invoice.sum()),
            # the tenant's numbering as configured or learned from its invoice_num values
            "invoice_number_formats": list(book.number_formats),
        }
    )
    clock.lap("output")
    return MatchResult(
        allocations=allocations,
        exceptions=exceptions,
        payout_matches=payout.matches,
        stats=stats,
        timings=clock.laps,
        judged=pd.concat([payout.judged, unbacked.judged], ignore_index=True),
    )


def _held(book: Book, invoices: pd.DataFrame) -> I64:
    """The optional `held` column of the invoices, in book order (zero when absent)."""
    if "held" not in invoices.columns:
        return np.zeros(book.n_invoices, dtype=np.int64)
    held = pd.Series(
        invoices["held"].to_numpy(dtype=np.int64),
        index=invoices["invoice_id"].to_numpy(dtype=np.int64),
    )
    return held.reindex(book.inv_id, fill_value=0).to_numpy(dtype=np.int64)


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        # Arrow's allocator keeps what a stage freed for reuse; hand it back between stages
        # so the next stage's numpy arrays do not come on top of it (peak memory)
        pa.default_memory_pool().release_unused()
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 4)
        self._last = now


def _allocate_auto(
    book: Book,
    ledger: Ledger,
    cands: Candidates,
    decisions: Decisions,
    balance: I64,
    cap: I64,
    settled_by: I64,
) -> Bools:
    """Allocate automatic decisions in booking order, each share asked against `balance` and
    served within `cap`; returns the payments that got money."""
    shares = serve_in_booking_order(asked_shares(book, cands, decisions, balance), cap)
    got = shares.allocated > 0
    ledger.allocate(
        shares.p[got],
        book.inv_id[shares.invoice[got]],
        shares.allocated[got],
        shares.rule[got],
        shares.confidence[got],
        np.ones(int(got.sum()), dtype=bool),
        names=_RULE_NAMES,
    )
    np.subtract.at(balance, shares.invoice[got], shares.allocated[got])
    np.subtract.at(cap, shares.invoice[got], shares.allocated[got])
    now_settled = got & (cap[shares.invoice] == 0)
    settled_by[shares.invoice[now_settled]] = shares.p[now_settled]
    result = outcomes(book, shares)
    placed = np.zeros(book.n_transactions, dtype=bool)
    placed[result.p[result.allocated > 0]] = True
    over = (result.allocated > 0) & (result.excess > 0)
    _overpayments(book, ledger, result.p[over], result.last_invoice[over], result.excess[over], "")
    short, gap = fee_gaps(book, shares)
    short &= got
    _underpayments(book, ledger, shares.p[short], shares.invoice[short], gap[short], "")
    return placed


def _overpayments(book: Book, ledger: Ledger, p: I64, invoice: I64, excess: I64, note: str) -> None:
    ccy = book.txn_ccy[p]
    ledger.except_(
        "overpayment",
        p,
        book.inv_id[invoice],
        excess,
        ccy,
        [
            f"{note}{e} more than invoice {i} had open"
            for e, i in zip(ledger.money(excess, ccy), book.inv_id[invoice], strict=True)
        ],
    )


def _underpayments(book: Book, ledger: Ledger, p: I64, invoice: I64, gap: I64, note: str) -> None:
    ccy = book.txn_ccy[p]
    ledger.except_(
        "underpayment",
        p,
        book.inv_id[invoice],
        gap,
        ccy,
        [
            f"{note}{g} short of invoice {i}, within the fee tolerance"
            for g, i in zip(ledger.money(gap, ccy), book.inv_id[invoice], strict=True)
        ],
    )


def _finalise(
    book: Book,
    ledger: Ledger,
    cands: Candidates,
    decisions: Decisions,
    residual: Bools,
    balance: I64,
    settled_by: I64,
    payout_credits: Bools,
) -> None:
    """Suggestions for review and an exception for every payment still unplaced."""
    review = take(decisions, residual[decisions.p])
    review = replace(review, auto=np.zeros(len(review.p), dtype=bool))
    suggested, crowded = _suggest(book, ledger, cands, review, balance)
    _runner_ups(book, ledger, cands, review)
    conflict = residual & (cands.conflict_kind != 0)
    _conflicts(book, ledger, cands, conflict, settled_by)
    _unmatched(book, ledger, residual & ~suggested & ~crowded & ~conflict)
    _unmatched_provider_credits(book, ledger, payout_credits)


def _suggest(
    book: Book, ledger: Ledger, cands: Candidates, review: Decisions, balance: I64
) -> tuple[Bools, Bools]:
    """Allocations for review, in booking order against what is still open.

    Returns the payments that got a suggestion, and those whose suggestion an earlier payment
    took (reported as ambiguous: a person picks).
    """
    shares = serve_in_booking_order(asked_shares(book, cands, review, balance), balance)
    got = shares.allocated > 0
    ledger.allocate(
        shares.p[got],
        book.inv_id[shares.invoice[got]],
        shares.allocated[got],
        shares.rule[got],
        shares.confidence[got],
        np.zeros(int(got.sum()), dtype=bool),
        names=_RULE_NAMES,
    )
    result = outcomes(book, shares)
    over = (result.allocated > 0) & (result.excess > 0)
    note = "suggested: "
    _overpayments(
        book, ledger, result.p[over], result.last_invoice[over], result.excess[over], note
    )
    short, gap = fee_gaps(book, shares)
    short &= got
    _underpayments(book, ledger, shares.p[short], shares.invoice[short], gap[short], note)
    taken = result.allocated == 0
    p, invoice = result.p[taken], book.inv_id[result.last_invoice[taken]]
    ledger.except_(
        "ambiguous",
        p,
        invoice,
        book.txn_amount[p],
        book.txn_ccy[p],
        [f"competes with an earlier payment for invoice {i}" for i in invoice],
    )
    suggested = np.zeros(book.n_transactions, dtype=bool)
    suggested[result.p[result.allocated > 0]] = True
    crowded = np.zeros(book.n_transactions, dtype=bool)
    crowded[p] = True
    return suggested, crowded


def _runner_ups(book: Book, ledger: Ledger, cands: Candidates, review: Decisions) -> None:
    """For an ambiguous payment, the other candidates close to the one suggested, each with
    its rule and confidence as data (and in the detail's words, for exceptions.csv)."""
    runner = np.isin(review.runner_up_p, review.p[review.ambiguous])
    p, group = review.runner_up_p[runner], review.runner_up[runner]
    start = np.searchsorted(cands.member_group, group, side="left")
    members = np.searchsorted(cands.member_group, group, side="right") - start
    invoice = book.inv_id[cands.member_invoice[start]]
    confidence = np.asarray(review.runner_up_confidence[runner], dtype=np.int64)
    rule = [_RULE_NAMES[r] for r in review.runner_up_rule[runner]]
    ledger.except_(
        "ambiguous",
        p,
        invoice,
        book.txn_amount[p],
        book.txn_ccy[p],
        [
            f"another candidate: invoice {i}{' and others' if m > 1 else ''}, confidence {c} ({r})"
            for i, m, c, r in zip(invoice, members, confidence, rule, strict=True)
        ],
        rule=rule,
        confidence=confidence,
    )


def _conflicts(
    book: Book, ledger: Ledger, cands: Candidates, conflict: Bools, settled_by: I64
) -> None:
    p = np.flatnonzero(conflict)
    inv = cands.conflict_invoice[p]
    kind = cands.conflict_kind[p]
    ccy = book.txn_ccy[p]
    amount = book.txn_amount[p]
    closed = kind == CLOSED
    duplicate = closed & (
        (settled_by[inv] >= 0) | (book.inv_paid_status[inv] & (amount == book.inv_total[inv]))
    )
    earlier = settled_by[inv]
    for mask, name in ((duplicate, "duplicate_payment"), (closed & ~duplicate, "closed_invoice")):
        details = []
        for i, e, pay in zip(inv[mask], earlier[mask], p[mask], strict=True):
            if e >= 0 and e != pay:
                details.append(
                    f"invoice {book.inv_id[i]} was already settled by {book.txn_name(e)}"
                )
            elif name == "duplicate_payment":
                details.append(f"invoice {book.inv_id[i]} is already paid in full")
            else:
                details.append(f"invoice {book.inv_id[i]} is {book.status_name(i)}, not open")
        ledger.except_(name, p[mask], book.inv_id[inv[mask]], amount[mask], ccy[mask], details)
    other = kind == OTHER_CURRENCY
    ledger.except_(
        "currency_mismatch",
        p[other],
        book.inv_id[inv[other]],
        amount[other],
        ccy[other],
        [
            f"payment in {book.currencies[c]} for invoice {book.inv_id[i]} in "
            f"{book.currencies[book.inv_ccy[i]]}"
            for c, i in zip(ccy[other], inv[other], strict=True)
        ],
    )


def _unmatched(book: Book, ledger: Ledger, unplaced: Bools) -> None:
    p = np.flatnonzero(unplaced)
    ccy = book.txn_ccy[p]
    invoice_ccys = np.unique(book.inv_ccy)
    foreign = ~np.isin(ccy, invoice_ccys)
    ledger.except_(
        "currency_mismatch",
        p[foreign],
        np.zeros(int(foreign.sum()), dtype=np.int64),
        book.txn_amount[p[foreign]],
        ccy[foreign],
        [f"no invoice is in {book.currencies[c]}" for c in ccy[foreign]],
    )
    rest = p[~foreign]
    ledger.except_(
        "unmatched_payment",
        rest,
        np.zeros(len(rest), dtype=np.int64),
        book.txn_amount[rest],
        book.txn_ccy[rest],
        ["no invoice found for this payment"] * len(rest),
    )


def _unmatched_provider_credits(book: Book, ledger: Ledger, payout_credits: Bools) -> None:
    p = np.flatnonzero(book.provider_credit & (book.txn_amount > 0) & ~payout_credits)
    ledger.except_(
        "unmatched_payment",
        p,
        np.zeros(len(p), dtype=np.int64),
        book.txn_amount[p],
        book.txn_ccy[p],
        ["a payment provider's payout with no matching payout record"] * len(p),
    )


_DISPUTE = r"(?i)dispute|chargeback|r[uü]ckbuchung|litige"
_REFUND = r"(?i)refund|erstattung|rembours|terugbetal|reembolso|rimborso"
_FEE = r"(?i)\bfee\b|geb[uü]hr|frais"


def _refunds(book: Book, ledger: Ledger, rec: Recorded) -> None:
    """Refunds and disputes of provider charges, reported against the charged invoice."""
    negative = np.flatnonzero(
        (book.txn_amount < 0) & np.isin(book.txn_source, [STRIPE, GOCARDLESS])
    )
    if not len(negative):
        return
    ref = book.references(negative)
    is_fee = pc.match_substring_regex(ref, _FEE).to_numpy(zero_copy_only=False)
    is_dispute = pc.match_substring_regex(ref, _DISPUTE).to_numpy(zero_copy_only=False)
    is_refund = pc.match_substring_regex(ref, _REFUND).to_numpy(zero_copy_only=False)
    wanted = ~is_fee & (is_dispute | is_refund)
    rows = negative[wanted]
    dispute = is_dispute[wanted]
    invoice = np.zeros(len(rows), dtype=np.int64)
    charge = np.full(len(rows), "", dtype=object)
    if len(rows):
        row, quoted = provider_ids(book.references(rows))
        by_payment = ledger.invoice_of(book.txn_positions(quoted))
        by_record = recorded_invoice_of(rec, quoted)
        found = np.where(by_payment > 0, by_payment, by_record)
        hit = found > 0
        # the first quoted id that leads to an invoice
        order = lexsort((np.arange(len(row)), row))[::-1]
        row_h, found_h = row[order][hit[order]], found[order][hit[order]]
        quoted_h = np.asarray(quoted.to_pylist(), dtype=object)[order][hit[order]]
        invoice[row_h] = found_h
        charge[row_h] = quoted_h
    for mask, kind in ((dispute, "dispute"), (~dispute, "refund")):
        p = rows[mask]
        ledger.except_(
            kind,
            p,
            invoice[mask],
            -book.txn_amount[p],
            book.txn_ccy[p],
            [
                f"{kind} of {c} for invoice {i}" if i else f"{kind} of a charge not found"
                for c, i in zip(charge[mask], invoice[mask], strict=True)
            ],
        )


__all__ = ["match"]
