"""Stripe and GoCardless payouts: each one found among the bank credits and broken down.

A payout should arrive in the bank as one credit from its provider (payer or reference text),
for its amount, around its arrival date: a range join on dates within (source, currency), never
the cross product. It should also equal the sum of the balance transactions it lists (charges,
fees, refunds, disputes). Any difference is a `payout_shortfall`.

Money outside the window (`MatchInputs.evidence`) takes part read-only: a payout may be found
among its credits, and its days count as covered when deciding which payouts are due, so a run
judges what one run over both windows judges; no evidence credit is consumed or raised on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]

from recon.matching.book import (
    BANK,
    SOURCE_CODES,
    SOURCES,
    Book,
    _provider_source,
    codes,
    codes_in,
    text,
)
from recon.matching.frames import empty_judged, empty_transactions
from recon.matching.ledger import Ledger
from recon.matching.parsing import days_to_iso
from recon.matching.vec import expand

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

_NOT_ARRIVING = frozenset({"failed", "canceled", "cancelled"})
_DAY_BITS = 32
_DAY_OFFSET = 1 << 30


@dataclass(frozen=True)
class PayoutOutcome:
    """Bank credits explained by payouts, the payout ↔ credit pairs, and the payouts judged."""

    consumed: Bools
    matches: pd.DataFrame
    stats: dict[str, int]
    judged: pd.DataFrame


@dataclass(frozen=True)
class Money:
    """The book's transactions (positions below `n_book`, decided by this run) followed by the
    evidence (read only), as the arrays payouts and judgements need."""

    book: Book
    n_book: int
    source: I64
    booked: I64
    amount: I64
    ccy: I64
    provider: I64
    evidence_ids: pa.Array
    evidence_references: pa.Array

    def ids(self, positions: I64) -> pa.Array:
        """Transaction ids at positions (book or evidence)."""
        inside = positions < self.n_book
        out = np.empty(len(positions), dtype=object)
        out[inside] = self.book.txn_ids(positions[inside]).to_numpy(zero_copy_only=False)
        rest = pa.array(positions[~inside] - self.n_book, type=pa.int64())
        out[~inside] = self.evidence_ids.take(rest).to_numpy(zero_copy_only=False)
        return pa.array(out, type=pa.large_string())

    def days(self, source: int) -> I64:
        """Booking days of one source's money, book and evidence."""
        days: I64 = self.booked[self.source == source]
        return days


def money_of(book: Book, evidence: pd.DataFrame | None) -> Money:
    """The book's transactions and the evidence (in booking order) side by side."""
    ev = empty_transactions() if evidence is None else evidence
    ev = ev.sort_values(["booked_on", "transaction_id"], kind="stable", ignore_index=True)
    source = codes(text(ev["source"]), SOURCES)
    references = text(ev["reference"])
    provider = _provider_source(source, text(ev["counterparty"]), references, book.config)

    def both(mine: npt.NDArray[np.generic], theirs: npt.NDArray[np.generic]) -> I64:
        return np.concatenate([mine.astype(np.int64), theirs.astype(np.int64)])

    return Money(
        book=book,
        n_book=book.n_transactions,
        source=both(book.txn_source, source),
        booked=both(book.txn_booked, ev["booked_on"].to_numpy(dtype=np.int64)),
        amount=both(book.txn_amount, ev["amount"].to_numpy(dtype=np.int64)),
        ccy=both(book.txn_ccy, codes(text(ev["currency"]), book.currencies)),
        provider=both(book.provider_source, provider),
        evidence_ids=text(ev["transaction_id"]),
        evidence_references=references,
    )


def judged_frame(kinds: tuple[str, ...], subjects: list[str]) -> pd.DataFrame:
    """(kind, subject) rows: every subject judged for every kind."""
    unique = sorted(set(subjects))
    if not unique or not kinds:
        return empty_judged()
    return pd.DataFrame(
        {
            "kind": pd.Series([k for k in kinds for _ in unique], dtype="str"),
            "subject": pd.Series([s for _ in kinds for s in unique], dtype="str"),
        }
    )


def match_payouts(
    book: Book,
    payouts: pd.DataFrame,
    lines: pd.DataFrame,
    ledger: Ledger,
    evidence: pd.DataFrame | None = None,
) -> PayoutOutcome:
    """Find each payout's bank credit and check it against its balance transactions."""
    consumed = np.zeros(book.n_transactions, dtype=bool)
    empty = pd.DataFrame(
        {
            "payout_id": pd.Series([], dtype="str"),
            "transaction_id": pd.Series([], dtype="str"),
            "amount": np.zeros(0, np.int64),
            "shortfall": np.zeros(0, np.int64),
        }
    )
    stats = {"payouts": len(payouts), "payouts_matched": 0, "payouts_short": 0}
    if payouts.empty:
        return PayoutOutcome(consumed, empty, stats, empty_judged())
    money = money_of(book, evidence)
    po = payouts.sort_values("payout_id", kind="stable").reset_index(drop=True)
    code = {c: k for k, c in enumerate(book.currencies)}
    pid = po["payout_id"].to_numpy(dtype=object)
    source = np.asarray(po["source"].map(SOURCE_CODES), dtype=np.int64)
    arrival = np.asarray(po["arrival_on"], dtype=np.int64)
    amount = np.asarray(po["amount"], dtype=np.int64)
    ccy = np.asarray(po["currency"].map(code), dtype=np.int64)
    arriving = ~np.asarray(po["status"].isin(list(_NOT_ARRIVING)), dtype=np.bool_)
    paid = np.asarray(po["status"] == "paid", dtype=np.bool_)
    broken_down = _breakdown(book, pid, amount, ccy, lines, ledger)

    pairs_po: list[I64] = []
    pairs_p: list[I64] = []
    remaining = arriving.copy()
    taken = np.zeros(len(money.amount), dtype=bool)
    # a positive payout arrives as a bank credit; a negative one is a debit, found exactly
    for sign, exact in ((1, True), (1, False), (-1, True)):
        rows = _provider_rows(money, source, sign)
        wanted = remaining & (np.sign(amount) == sign)
        po_idx, p = _date_range_join(money, rows, source, ccy, arrival, wanted)
        credit_amount = money.amount[p]
        if exact:
            ok = credit_amount == amount[po_idx]
        else:
            missing = amount[po_idx] - credit_amount
            limit = amount[po_idx] * int(book.config.payout_short_max_percent * 100)
            ok = (missing > 0) & (missing * 10_000 <= limit)
        ok &= ~taken[p]
        chosen_po, chosen_p = _one_to_one(po_idx[ok], p[ok], arrival, money, amount)
        remaining[chosen_po] = False
        taken[chosen_p] = True
        pairs_po.append(chosen_po)
        pairs_p.append(chosen_p)
    po_idx = np.concatenate(pairs_po)
    p = np.concatenate(pairs_p)
    consumed[p[p < money.n_book]] = True
    shortfall = amount[po_idx] - money.amount[p]
    # a short credit among the evidence was raised by the run that decided it
    short = (shortfall > 0) & (amount[po_idx] > 0) & (p < money.n_book)
    if short.any():
        s_po, s_p = po_idx[short], p[short]
        ledger.except_(
            "payout_shortfall",
            s_p,
            np.zeros(len(s_p), dtype=np.int64),
            shortfall[short],
            ccy[s_po],
            [
                f"payout {i} of {a} arrived as {c}: {s} short"
                for i, a, c, s in zip(
                    pid[s_po],
                    ledger.money(amount[s_po], ccy[s_po]),
                    ledger.money(book.txn_amount[s_p], ccy[s_po]),
                    ledger.money(shortfall[short], ccy[s_po]),
                    strict=True,
                )
            ],
        )
    due = _report_missing(money, pid, amount, ccy, arrival, remaining & paid, ledger)
    stats["payouts_matched"] = len(po_idx)
    stats["payouts_short"] = int(short.sum())
    matches = pd.DataFrame(
        {
            "payout_id": pd.Series(pid[po_idx], dtype="str"),
            "transaction_id": money.ids(p).to_pandas(),
            "amount": money.amount[p],
            "shortfall": shortfall,
        }
    ).sort_values("payout_id", kind="stable", ignore_index=True)
    # a payout found, or due with the days around it covered, is judged for being missing
    missing_judged = [str(i) for i in pid[po_idx]] + [str(i) for i in pid[due]]
    judged = pd.concat(
        [
            judged_frame(("payout_missing",), missing_judged),
            judged_frame(("payout_incomplete", "payout_shortfall"), [str(i) for i in broken_down]),
        ],
        ignore_index=True,
    )
    return PayoutOutcome(consumed, matches, stats, judged)


def _provider_rows(money: Money, payout_source: I64, sign: int) -> dict[int, I64]:
    """Bank credits (sign 1) or debits (-1) whose payer or reference names each payout source."""
    direction = np.sign(money.amount) == sign
    return {
        int(code): np.flatnonzero((money.provider == code) & direction)
        for code in np.unique(payout_source)
    }


def _date_range_join(
    money: Money,
    credits: dict[int, I64],
    source: I64,
    ccy: I64,
    arrival: I64,
    wanted: Bools,
) -> tuple[I64, I64]:
    """(payout, credit) pairs of the same source and currency within the arrival window."""
    cfg = money.book.config
    parts_po: list[I64] = []
    parts_p: list[I64] = []
    for code, positions in credits.items():
        positions = positions[money.ccy[positions] >= 0]  # evidence in a currency unseen here
        block = money.ccy[positions] << _DAY_BITS
        keys = block + money.booked[positions] + _DAY_OFFSET
        order = np.argsort(keys, kind="stable")
        keys, positions = keys[order], positions[order]
        mine = np.flatnonzero(wanted & (source == code))
        base = (ccy[mine] << _DAY_BITS) + _DAY_OFFSET
        lo = np.searchsorted(keys, base + arrival[mine] - cfg.payout_days_before, side="left")
        hi = np.searchsorted(keys, base + arrival[mine] + cfg.payout_days_after, side="right")
        which, slot = expand(lo, hi - lo)
        parts_po.append(mine[which])
        parts_p.append(positions[slot])
    if not parts_po:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(parts_po), np.concatenate(parts_p)


def _one_to_one(po: I64, p: I64, arrival: I64, money: Money, amount: I64) -> tuple[I64, I64]:
    """Greedy one-to-one pairing: closest date, then closest amount, then stable ids."""
    chosen_po: list[I64] = []
    chosen_p: list[I64] = []
    frame = pd.DataFrame(
        {
            "po": po,
            "p": p,
            "days": np.abs(money.booked[p] - arrival[po]),
            "diff": np.abs(amount[po] - money.amount[p]),
        }
    )
    for _ in range(4):
        if frame.empty:
            break
        best = frame.sort_values(["days", "diff", "po", "p"], kind="stable")
        best = best.drop_duplicates("po").drop_duplicates("p")
        chosen_po.append(best["po"].to_numpy(dtype=np.int64))
        chosen_p.append(best["p"].to_numpy(dtype=np.int64))
        frame = frame[~frame["po"].isin(best["po"]) & ~frame["p"].isin(best["p"])]
    if not chosen_po:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(chosen_po), np.concatenate(chosen_p)


def _breakdown(
    book: Book, pid: npt.NDArray[np.object_], amount: I64, ccy: I64, lines: pd.DataFrame,
    ledger: Ledger,
) -> npt.NDArray[np.object_]:  # fmt: skip
    """Each payout against the sum of the transactions it lists; returns the payouts judged
    (those with lines)."""
    position = book.line_txn
    payout = codes_in(text(lines["payout_id"]), pa.array(pid.astype(str), type=pa.large_string()))
    known = position >= 0
    n = len(pid)
    listed = np.bincount(payout, minlength=n)
    unknown = np.bincount(payout[~known], minlength=n)
    total = np.zeros(n, dtype=np.int64)
    np.add.at(total, payout[known], book.txn_amount[position[known]])
    has_lines = listed > 0
    incomplete = np.flatnonzero(has_lines & (unknown > 0))
    if len(incomplete):
        ledger.except_(
            "payout_incomplete",
            np.full(len(incomplete), -1, dtype=np.int64),
            np.zeros(len(incomplete), dtype=np.int64),
            amount[incomplete],
            ccy[incomplete],
            [
                f"payout {i} lists {u} of its {n_} transactions that are not in the transactions"
                for i, u, n_ in zip(
                    pid[incomplete], unknown[incomplete], listed[incomplete], strict=True
                )
            ],
            [str(i) for i in pid[incomplete]],
        )
    differs = np.flatnonzero(has_lines & (unknown == 0) & (total != amount))
    if len(differs):
        gap = total[differs] - amount[differs]
        ledger.except_(
            "payout_shortfall",
            np.full(len(differs), -1, dtype=np.int64),
            np.zeros(len(differs), dtype=np.int64),
            gap,
            ccy[differs],
            [
                f"payout {i} is {a} but its transactions add up to {t}"
                for i, a, t in zip(
                    pid[differs],
                    ledger.money(amount[differs], ccy[differs]),
                    ledger.money(total[differs], ccy[differs]),
                    strict=True,
                )
            ],
            [str(i) for i in pid[differs]],
        )
    return pid[has_lines]


def _report_missing(
    money: Money, pid: npt.NDArray[np.object_], amount: I64, ccy: I64, arrival: I64,
    remaining: Bools, ledger: Ledger,
) -> I64:  # fmt: skip
    """Paid payouts that should be in the bank by now but are not (in transit are not due).

    Returns the payouts whose days the bank money (this run's and the evidence) covers."""
    bank_days = money.days(BANK)
    if not len(bank_days):
        return np.zeros(0, dtype=np.int64)
    lo, hi = int(bank_days.min()), int(bank_days.max()) - money.book.config.payout_days_after
    due = np.flatnonzero((arrival >= lo) & (arrival <= hi))
    missing = due[remaining[due]]
    if len(missing):
        ledger.except_(
            "payout_missing",
            np.full(len(missing), -1, dtype=np.int64),
            np.zeros(len(missing), dtype=np.int64),
            amount[missing],
            ccy[missing],
            [
                f"payout {i} of {a} due on {d} has no matching bank credit"
                for i, a, d in zip(
                    pid[missing],
                    ledger.money(amount[missing], ccy[missing]),
                    days_to_iso(arrival[missing]),
                    strict=True,
                )
            ],
            [str(i) for i in pid[missing]],
        )
    return due
