"""The last tier of candidates, for payments with nothing else: suggestions only.

Reference numbers one typo away from an invoice key (every variant generated and looked up in the
key index) and numbers cut by the bank completed to every key they start (a range of the sorted
keys), each kept only with the payment's exact amount.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from recon.matching.references import LABELLED
from recon.matching.rules import VIA_CUT, VIA_TYPO
from recon.matching.vec import expand, first_of_groups, lexsort

if TYPE_CHECKING:
    from recon.matching.pass_state import PassState, Singles

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

_POW10 = np.array([10**k for k in range(13)], dtype=np.int64)


def variant_candidates(state: PassState, lonely: Bools, singles: Singles) -> None:
    """Invoices one typo away from a labelled number, or completing a cut number, with the
    payment's exact amount: suggestions for payments that have nothing else."""
    book, prep = state.book, state.prep
    sel = lonely[prep.refs.row]
    refs = prep.refs.take(sel)
    found_p: list[I64] = []
    found_i: list[I64] = []
    found_via: list[I64] = []
    ok = (refs.digits >= 5) & ~refs.cut & (refs.kind >= LABELLED)
    if ok.any():
        variants, owner = typo_variants(refs.value[ok], refs.digits[ok].astype(np.int64))
        which, slot = book.keys.index.lookup(variants)
        found_p.append(refs.row[ok][owner[which]])
        found_i.append(book.keys.invoice[slot])
        found_via.append(np.full(len(which), VIA_TYPO, dtype=np.int64))
    ok = refs.cut & (refs.digits >= 3)
    value, row = refs.value[ok], refs.row[ok]
    for missing in (1, 2, 3):
        lo = np.searchsorted(book.keys.value, value * _POW10[missing], side="left")
        hi = np.searchsorted(book.keys.value, (value + 1) * _POW10[missing], side="left")
        which, slot = expand(lo, hi - lo)
        found_p.append(row[which])
        found_i.append(book.keys.invoice[slot])
        found_via.append(np.full(len(which), VIA_CUT, dtype=np.int64))
    if not found_p:
        return
    p, i, via = np.concatenate(found_p), np.concatenate(found_i), np.concatenate(found_via)
    keep = (
        state.is_open[i]
        & (book.inv_ccy[i] == book.txn_ccy[p])
        & (state.balance[i] == book.txn_amount[p])
        & state.window(p, i, by_reference=True)
    )
    p, i, via = p[keep], i[keep], via[keep]
    order = lexsort((via, i, p))
    order = order[first_of_groups(p[order], i[order])]
    for kind in (VIA_TYPO, VIA_CUT):
        mine = order[via[order] == kind]
        singles.add(p[mine], i[mine], kind)


def typo_variants(value: I64, digits: I64) -> tuple[I64, I64]:
    """Every number one digit changed or two neighbours swapped away, and whose it is."""
    width = int(digits.max())
    pos = np.arange(width)
    digit = (value[:, None] // _POW10[None, :width]) % 10
    in_number = pos[None, :] < digits[:, None]
    leading = pos[None, :] == (digits[:, None] - 1)
    out: list[I64] = []
    owners: list[I64] = []
    for new in range(10):
        ok = in_number & (digit != new) & ~(leading & (new == 0))
        r, c = np.nonzero(ok)
        out.append(value[r] + (new - digit[r, c]) * _POW10[c])
        owners.append(r)
    if width >= 2:
        low, high = digit[:, :-1], digit[:, 1:]
        ok = (pos[None, :-1] < digits[:, None] - 1) & (low != high)
        ok &= ~((pos[None, :-1] == digits[:, None] - 2) & (low == 0))
        r, c = np.nonzero(ok)
        out.append(
            np.asarray(
                value[r]
                + (high[r, c] - low[r, c]) * _POW10[c]
                + (low[r, c] - high[r, c]) * _POW10[c + 1],
                dtype=np.int64,
            )
        )
        owners.append(r)
    return np.concatenate(out).astype(np.int64), np.concatenate(owners).astype(np.int64)
