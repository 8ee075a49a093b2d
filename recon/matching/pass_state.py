"""What one pass of candidate building works with, and the single candidates it collects.

`PassState` holds the payments still to place and the invoices still open; `Singles` gathers
single-invoice candidates block by block; `RefFacts` is what the references say, shared by the
name, subset and assembly steps of `recon.matching.candidates`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from recon.matching.book import Book
from recon.matching.prepare import Prepared
from recon.matching.rules import EXACT, FEE, OVER, PARTIAL
from recon.matching.vec import expand

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

__all__ = ["PassState", "RefFacts", "Singles", "relation"]


def relation(amount: I64, balance: I64, fee_cap: I64, basis_points: int) -> I64:
    """EXACT, FEE (short within tolerance), PARTIAL or OVER, in exact integer arithmetic."""
    gap = balance - amount
    fee = (gap > 0) & (gap <= fee_cap) & (gap * 10_000 <= balance * basis_points)
    return np.select([gap == 0, fee, gap > 0], [EXACT, FEE, PARTIAL], default=OVER).astype(np.int64)


@dataclass(frozen=True)
class PassState:
    """What one pass works with: the payments still to place and the invoices still open."""

    book: Book
    prep: Prepared
    residual: Bools
    balance: I64
    is_open: Bools
    open_by_client: I64  # open invoices sorted by (client, due date, id)
    client_start: I64
    client_count: I64

    def relation(self, p: I64, i: I64) -> I64:
        book = self.book
        return relation(
            book.txn_amount[p],
            self.balance[i],
            book.fee_cap[book.txn_ccy[p]],
            book.config.fee_tolerance_basis_points,
        )

    def window(self, p: I64, i: I64, by_reference: bool | Bools) -> Bools:
        """Booking date plausible for the invoice: the reference window or the name window."""
        cfg = self.book.config
        before = np.where(by_reference, cfg.ref_days_before_issue, cfg.name_days_before_issue)
        after = np.where(by_reference, cfg.ref_days_after_due, cfg.name_days_after_due)
        booked = self.book.txn_booked[p].astype(np.int64)
        return (booked >= self.book.inv_issued[i] - before) & (
            booked <= self.book.inv_due[i] + after
        )

    def overdue_window(self, p: I64, i: I64) -> Bools:
        """Issued by the payment's date (give or take the name window's days before issue) and
        not overdue longer than `name_overdue_days`: what a payer's name may still be paying."""
        cfg = self.book.config
        booked = self.book.txn_booked[p].astype(np.int64)
        return (booked >= self.book.inv_issued[i].astype(np.int64) - cfg.name_days_before_issue) & (
            booked <= self.book.inv_due[i].astype(np.int64) + cfg.name_overdue_days
        )

    def open_invoices_of(self, client: I64) -> tuple[I64, I64]:
        """(which client, open invoice) for every open invoice of each client, oldest first."""
        which, slot = expand(self.client_start[client], self.client_count[client])
        return which, self.open_by_client[slot]


_FEATURE_DEFAULTS: dict[str, tuple[type, int]] = {
    "labelled": (np.bool_, 0),
    "level": (np.int64, 0),
    "key_clients": (np.int64, 1),
    "same_amount": (np.int64, 1),
    "typo": (np.bool_, 0),
    "cut": (np.bool_, 0),
    "client_open": (np.int64, 1),
    "name_fits": (np.int64, 1),
}


@dataclass
class Singles:
    """Single-invoice candidates being assembled, one block per way of finding them."""

    blocks: list[dict[str, npt.NDArray[np.generic]]]

    def add(self, p: I64, i: I64, via: int, **features: npt.NDArray[np.generic]) -> None:
        n = len(p)
        block: dict[str, npt.NDArray[np.generic]] = {
            "p": p,
            "i": i,
            "via": np.full(n, via, dtype=np.int64),
        }
        for name, (kind, default) in _FEATURE_DEFAULTS.items():
            block[name] = np.asarray(features.get(name, np.full(n, default, dtype=kind)), kind)
        self.blocks.append(block)

    def column(self, name: str) -> npt.NDArray[np.generic]:
        return np.concatenate([b[name] for b in self.blocks])


@dataclass(frozen=True)
class RefFacts:
    """What the references say, per payment and per usable (open, same currency) candidate."""

    p: I64
    i: I64
    labelled: Bools
    cut: Bools
    level: I64
    conflict_invoice: I64
    conflict_kind: I64
    holds_back: Bools
    named: Bools  # names an open invoice with an invoice word, or one of the payer's
    count: I64  # usable candidates per payment
