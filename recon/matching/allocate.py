"""Turning chosen candidates into amounts, in booking order, never beyond what is open.

Each chosen (payment, invoice) pair asks for a share: the payment amount for a single invoice
(the whole of it, also when short or partial), the open balance when the payment is larger, each
invoice's balance for a set. Per invoice the shares are served in booking order, each capped by
what earlier payments left open, so allocations never exceed the balance and a later payment for
an invoice already settled gets nothing: a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from recon.matching.book import Book
from recon.matching.candidates import Candidates, relation
from recon.matching.decide import Decisions
from recon.matching.rules import FEE
from recon.matching.vec import expand, first_of_groups, group_sum, lexsort

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Shares:
    """Allocated amounts of chosen candidates, one row per (payment, invoice)."""

    p: I64
    invoice: I64
    asked: I64
    allocated: I64
    open_before: I64  # what the invoice still had open when this payment's turn came
    rule: I64
    confidence: I64
    members: I64


def asked_shares(book: Book, cands: Candidates, decisions: Decisions, balance: I64) -> Shares:
    """The (payment, invoice, share asked) rows of the chosen groups."""
    member_start = np.searchsorted(cands.member_group, decisions.group, side="left")
    member_end = np.searchsorted(cands.member_group, decisions.group, side="right")
    which, slot = expand(member_start, member_end - member_start)
    p = decisions.p[which]
    invoice = cands.member_invoice[slot]
    members = (member_end - member_start)[which]
    amount = book.txn_amount[p]
    single = members == 1
    asked = np.where(single & (amount <= balance[invoice]), amount, balance[invoice])
    zeros = np.zeros(len(p), dtype=np.int64)
    return Shares(
        p, invoice, asked, zeros, zeros, decisions.rule[which], decisions.confidence[which], members
    )


def serve_in_booking_order(shares: Shares, balance: I64) -> Shares:
    """Cap each share by what earlier payments (lower positions) left open on its invoice."""
    order = lexsort((shares.p, shares.invoice))
    inv = shares.invoice[order]
    asked = shares.asked[order]
    first = first_of_groups(inv)
    running = np.cumsum(asked)
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(inv)), 0))
    before = running - asked - (running[group_start] - asked[group_start])
    open_before = np.maximum(balance[inv] - before, 0)
    allocated = np.minimum(asked, open_before)
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    return Shares(
        shares.p,
        shares.invoice,
        shares.asked,
        allocated[back],
        open_before[back],
        shares.rule,
        shares.confidence,
        shares.members,
    )


@dataclass(frozen=True)
class PaymentOutcome:
    """Per payment of a set of shares: total allocated, excess over it, shortfall to fees."""

    p: I64
    allocated: I64
    excess: I64
    last_invoice: I64


def outcomes(book: Book, shares: Shares) -> PaymentOutcome:
    """Sum the shares per payment (payments sorted, each once)."""
    order = lexsort((shares.invoice, shares.p))
    p = shares.p[order]
    first = first_of_groups(p)
    group = np.cumsum(first) - 1
    n = int(first.sum())
    allocated = group_sum(group, shares.allocated[order], n)
    payments = p[first]
    last = np.zeros(n, dtype=np.int64)
    last[group] = shares.invoice[order]
    return PaymentOutcome(payments, allocated, book.txn_amount[payments] - allocated, last)


def fee_gaps(book: Book, shares: Shares) -> tuple[Bools, I64]:
    """Single-invoice shares short of what was open by no more than the fee tolerance: which,
    and the gap left open (reported as an underpayment)."""
    rel = relation(
        book.txn_amount[shares.p],
        shares.open_before,
        book.fee_cap[book.txn_ccy[shares.p]],
        book.config.fee_tolerance_basis_points,
    )
    gap = shares.open_before - shares.allocated
    return (shares.members == 1) & (rel == FEE) & (gap > 0), gap
