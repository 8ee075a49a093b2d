"""Subset candidates: sets of open invoices that add up to a payment exactly.

Two kinds of problems share one bounded search (`recon.matching.subsets.exact_subsets`): the
invoices one reference names, and the open invoices of one client (named by the reference or
by the payer's name).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from recon.matching.book import pair_key
from recon.matching.pass_state import PassState, RefFacts
from recon.matching.prepare import payer_level
from recon.matching.rules import VIA_MULTI, VIA_SUBSET
from recon.matching.subsets import exact_subsets
from recon.matching.vec import first_of_groups, group_max, group_min, lexsort

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

# the open invoices of one client considered for a subset sum, oldest first
_SUBSET_POOL = 64
# the clients sharing a payer's name whose open invoices are searched for subsets
_SUBSET_CLIENTS = 12

__all__ = ["Groups", "subset_candidates"]


@dataclass(frozen=True)
class Groups:
    """Multi-invoice candidates: one row per group, and their member invoices."""

    group_p: I64
    via: I64
    labelled: Bools
    level: I64
    key_clients: I64
    solutions: I64
    complete: Bools
    contains_ref: Bools
    one_client: Bools
    member_group: I64
    member_invoice: I64
    unsure: Bools  # per payment: a client's open invoices were too many to search them all
    ways: I64  # per payment: subsets that add up, over every client searched
    unsearched: Bools  # per payment: some client its payer's name may be was not searched


def subset_candidates(state: PassState, refs: RefFacts, want_client_sums: Bools) -> Groups:
    """Sets of open invoices that add up to a payment exactly.

    Problems are (a) the invoices one reference names (every residual payment naming two or
    more), and (b) the open invoices of one client, named by the reference (invoice word) or
    by the payer's full name, for payments no single invoice matches exactly.
    """
    book, prep = state.book, state.prep
    cfg = book.config
    whole = ~refs.cut
    rp, ri, rlab = refs.p[whole], refs.i[whole], refs.labelled[whole]
    # (a) the invoices named in one reference
    a_first = first_of_groups(rp)
    a_problem = np.cumsum(a_first) - 1
    a_size = np.bincount(a_problem)[a_problem] if len(rp) else np.zeros(0, np.int64)
    a_rows = np.flatnonzero(a_size >= 2)
    # (b) (payment, client) pairs, by reference before by payer
    by_ref = rlab & want_client_sums[rp]
    # every client a payer's name may be, up to a handful of them
    wanted = prep.name_usable & want_client_sums[prep.name_p]
    strong = wanted & (prep.name_kc <= _SUBSET_CLIENTS)
    unsearched = np.zeros(book.n_transactions, dtype=bool)
    unsearched[prep.name_p[wanted & ~strong]] = True
    pair_p = np.concatenate([rp[by_ref], prep.name_p[strong]])
    pair_c = np.concatenate([book.inv_client[ri[by_ref]], prep.name_client[strong]])
    pair_ref = np.concatenate([np.ones(int(by_ref.sum()), bool), np.zeros(int(strong.sum()), bool)])
    pair_level = np.concatenate([np.zeros(int(by_ref.sum()), np.int64), prep.name_level[strong]])
    pair_kc = np.concatenate([np.ones(int(by_ref.sum()), np.int64), prep.name_kc[strong]])
    order = lexsort((~pair_ref, pair_c, pair_p))
    order = order[first_of_groups(pair_p[order], pair_c[order])]
    pair_p, pair_c, pair_ref = pair_p[order], pair_c[order], pair_ref[order]
    pair_level, pair_kc = pair_level[order], pair_kc[order]
    which, b_i = state.open_invoices_of(pair_c)
    b_p = pair_p[which]
    # by name, the pool is what a single invoice may be found in too (overdue ones included),
    # so that a subset reaching back to an old invoice holds back a single one of the amount
    in_pool = np.where(
        pair_ref[which],
        state.window(b_p, b_i, by_reference=True),
        state.overdue_window(b_p, b_i),
    )
    keep = (book.inv_ccy[b_i] == book.txn_ccy[b_p]) & in_pool
    which, b_i = which[keep], b_i[keep]
    # the pool is cut after the window, so that a cut pool is seen as such (`complete`)
    first_few = (np.arange(len(which)) - np.searchsorted(which, which)) < _SUBSET_POOL
    which, b_i = which[first_few], b_i[first_few]
    # one problem numbering for both kinds
    n_a = int(a_problem[a_rows].max()) + 1 if len(a_rows) else 0
    problem = np.concatenate([a_problem[a_rows], which + n_a]).astype(np.int64)
    member = np.concatenate([ri[a_rows], b_i]).astype(np.int64)
    payment = np.full(n_a + len(pair_p), -1, dtype=np.int64)
    payment[a_problem[a_rows]] = rp[a_rows]
    payment[n_a:] = pair_p
    via = np.where(np.arange(len(payment)) < n_a, VIA_MULTI, VIA_SUBSET)
    level = np.concatenate([np.zeros(n_a, np.int64), pair_level])
    key_clients = np.concatenate([np.ones(n_a, np.int64), pair_kc])
    order = lexsort((member, problem))
    problem, member = problem[order], member[order]
    safe_payment = np.maximum(payment, 0)
    solved = exact_subsets(
        problem, state.balance[member], book.txn_amount[safe_payment], cfg.subset_max_invoices
    )
    m_problem = solved.member_problem
    m_invoice = member[solved.member_row]
    order = np.argsort(m_problem, kind="stable")
    m_problem, m_invoice = m_problem[order], m_invoice[order]
    groups, m_group = np.unique(m_problem, return_inverse=True)
    m_group = m_group.astype(np.int64)
    gp = payment[groups]
    n_groups = len(groups)
    # which members the reference names, among the named invoices of these payments
    has_group = np.zeros(book.n_transactions, dtype=bool)
    has_group[gp] = True
    of_groups = has_group[refs.p]
    named = _pair_set(refs.p[of_groups], refs.i[of_groups])
    lab = of_groups & refs.labelled
    member_p = gp[m_group]
    in_ref = _contains(named, member_p, m_invoice)
    in_lab = _contains(_pair_set(refs.p[lab], refs.i[lab]), member_p, m_invoice)
    group_level = level[groups]
    multi = via[groups] == VIA_MULTI
    if multi.any():
        member_level = payer_level(prep, member_p, book.inv_client[m_invoice])
        group_level = np.where(multi, group_max(m_group, member_level, n_groups), group_level)
    clients = book.inv_client[m_invoice]
    unsure = np.zeros(book.n_transactions, dtype=bool)
    unsure[payment[(via == VIA_SUBSET) & ~solved.complete]] = True
    by_client = np.flatnonzero(via == VIA_SUBSET)
    ways = np.bincount(
        payment[by_client], weights=solved.solutions[by_client], minlength=book.n_transactions
    ).astype(np.int64)
    return Groups(
        group_p=gp,
        via=via[groups].astype(np.int64),
        labelled=group_max(m_group, in_lab.astype(np.int64), n_groups).astype(bool),
        level=group_level,
        key_clients=key_clients[groups],
        solutions=solved.solutions[groups],
        complete=solved.complete[groups],
        contains_ref=group_max(m_group, in_ref.astype(np.int64), n_groups).astype(bool),
        one_client=group_min(m_group, clients, n_groups, -1)
        == group_max(m_group, clients, n_groups, -1),
        member_group=m_group,
        member_invoice=m_invoice,
        unsure=unsure,
        ways=ways,
        unsearched=unsearched,
    )


def _pair_set(p: I64, i: I64) -> npt.NDArray[np.uint64]:
    return np.unique(pair_key(p, i.astype(np.uint64)))


def _contains(pairs: npt.NDArray[np.uint64], p: I64, i: I64) -> Bools:
    return np.isin(pair_key(p, i.astype(np.uint64)), pairs, assume_unique=False)
