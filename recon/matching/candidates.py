"""Blocking: the few invoices each payment could settle, and the features the rules read.

Never the cross product. Candidates come from, in this order of strength:

1. reference numbers equal to invoice keys (exact joins, done once in `prepare`);
2. the payer's name keys joined to client name keys, then the client's open invoices;
3. bounded subset sums among the invoices one reference names, or of one client;
4. for payments still without any candidate (suggestions only): reference numbers one typo
   away from a key (generated variants, hash lookups) and cut numbers completed by a range.

Everything here depends on the open balances, so it is rebuilt for each pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from recon.matching.book import Book, pair_key
from recon.matching.prepare import Prepared, payer_level
from recon.matching.references import FORMATTED, LABELLED, is_cut_prefix, one_edit_apart
from recon.matching.rules import (
    EXACT,
    FEE,
    OVER,
    PARTIAL,
    VIA_CUT,
    VIA_MULTI,
    VIA_NAME,
    VIA_REF,
    VIA_SUBSET,
    VIA_TYPO,
    Features,
)
from recon.matching.subsets import exact_subsets
from recon.matching.variants import variant_candidates
from recon.matching.vec import csr, dense_rank, expand, first_of_groups, group_max, group_min

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

NO_CONFLICT, CLOSED, OTHER_CURRENCY = 0, 1, 2
# the open invoices of one client considered for a subset sum, oldest first
_SUBSET_POOL = 64
# the clients sharing a payer's name whose open invoices are searched for subsets
_SUBSET_CLIENTS = 5

__all__ = ["CLOSED", "NO_CONFLICT", "OTHER_CURRENCY", "OVER", "PARTIAL", "Candidates"]


@dataclass(frozen=True)
class Candidates:
    """Candidate groups (a payment with one or several invoices) and their features.

    `member_group` is sorted: the invoices of group g are a contiguous run.
    """

    group_p: I64
    features: Features
    member_group: I64
    member_invoice: I64
    conflict_invoice: I64  # per payment: a closed / other-currency invoice its reference names
    conflict_kind: I64


def relation(amount: I64, balance: I64, fee_cap: I64, basis_points: int) -> I64:
    """EXACT, FEE (short within tolerance), PARTIAL or OVER, in exact integer arithmetic."""
    gap = balance - amount
    fee = (gap > 0) & (gap <= fee_cap) & (gap * 10_000 <= balance * basis_points)
    return np.select([gap == 0, fee, gap > 0], [EXACT, FEE, PARTIAL], default=OVER).astype(np.int64)


@dataclass(frozen=True)
class _Pass:
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
class _Singles:
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
class _RefFacts:
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


@dataclass(frozen=True)
class _Groups:
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


def build_candidates(
    book: Book, prep: Prepared, residual: Bools, balance: I64, suggestions: bool = True
) -> Candidates:
    """Every candidate of the residual payments against the invoices open at `balance`.

    Without `suggestions`, the typo-variant and cut-completion tier is left out: it only ever
    gives suggestions for review (for payments with no other candidate), so the passes that
    look for automatic allocations can skip it.
    """
    state = _pass_state(book, prep, residual, balance)
    singles = _Singles([])
    refs = _reference_candidates(state, singles)
    name_fits = _name_candidates(state, refs, singles)
    exact = np.zeros(book.n_transactions, dtype=bool)
    exact[refs.p[state.relation(refs.p, refs.i) == EXACT]] = True
    # a payer's open invoices are summed even when one of them has the amount: if a subset
    # fits too, the single invoice is only a guess
    groups = _subset_candidates(state, refs, residual & ~exact)
    if suggestions:
        placed = np.zeros(book.n_transactions, dtype=bool)
        placed[singles.column("p")] = True
        placed[groups.group_p] = True
        variant_candidates(state, residual & ~placed, singles)
    return _assemble(state, singles, groups, refs, name_fits)


def _pass_state(book: Book, prep: Prepared, residual: Bools, balance: I64) -> _Pass:
    is_open = book.inv_open_status & (balance > 0)
    by_client = book.by_client[is_open[book.by_client]]
    start, count = csr(book.inv_client[by_client], int(book.inv_client.max(initial=-1)) + 1)
    return _Pass(book, prep, residual, balance, is_open, by_client, start, count)


def _reference_candidates(state: _Pass, singles: _Singles) -> _RefFacts:
    """Invoices the reference numbers name; conflicts with closed or other-currency ones."""
    book, prep = state.book, state.prep
    n_txn = book.n_transactions
    sel = state.residual[prep.join_p]
    p, i = prep.join_p[sel], prep.join_i[sel]
    kind, cut, level = prep.join_kind[sel], prep.join_cut[sel], prep.join_level[sel]
    same_ccy = book.inv_ccy[i] == book.txn_ccy[p]
    is_open = state.is_open[i]
    # a number naming a closed or other-currency invoice is reported when written as an invoice
    # number or when the amount is that invoice's total; it holds back automatic decisions when
    # that invoice also fits the payment: same total, or the payer is its client
    total_fits = book.txn_amount[p] == book.inv_total[i]
    fits = total_fits | (level >= 1)
    strong = ((kind >= LABELLED) & ~cut) | total_fits
    closed = strong & ~is_open
    foreign = strong & is_open & ~same_ccy
    conflicting = np.flatnonzero(closed | foreign)
    # per payment, report the conflicting invoice that fits best, then the lowest position
    order = np.lexsort((i[conflicting], ~fits[conflicting], p[conflicting]))
    conflicting = conflicting[order]
    chosen = conflicting[first_of_groups(p[conflicting])]
    conflict_invoice = np.full(n_txn, -1, dtype=np.int64)
    conflict_kind = np.zeros(n_txn, dtype=np.int64)
    conflict_invoice[p[chosen]] = i[chosen]
    conflict_kind[p[chosen]] = np.where(closed[chosen], CLOSED, OTHER_CURRENCY)
    holds_back = np.zeros(n_txn, dtype=bool)
    holds_back[p[(closed | foreign) & fits]] = True

    usable = is_open & same_ccy
    p, i, kind, cut, level = p[usable], i[usable], kind[usable], cut[usable], level[usable]
    labelled = kind >= LABELLED
    for mask, via in ((~cut, VIA_REF), (cut, VIA_CUT)):
        singles.add(p[mask], i[mask], via, labelled=labelled[mask], level=level[mask])
    named = np.zeros(n_txn, dtype=bool)
    named[p[labelled | (level >= 1)]] = True
    return _RefFacts(
        p=p,
        i=i,
        labelled=labelled,
        cut=cut,
        level=level,
        conflict_invoice=conflict_invoice,
        conflict_kind=conflict_kind,
        holds_back=holds_back,
        named=named,
        count=np.bincount(p, minlength=n_txn).astype(np.int64),
    )


def _name_candidates(state: _Pass, refs: _RefFacts, singles: _Singles) -> I64:
    """Open invoices of the client the payer's name points to.

    Skipped for payments whose reference already names an invoice of the payer with the amount
    (nothing to add). Returns, per payment, how many open invoices of the clients its payer's
    name may be have exactly its amount, whatever their dates.
    """
    book, prep = state.book, state.prep
    cfg = book.config
    rel = state.relation(refs.p, refs.i)
    settled = (rel == EXACT) | (rel == FEE)
    decisive = np.zeros(book.n_transactions, dtype=bool)
    decisive[refs.p[settled & (refs.level >= 1) & ~refs.cut]] = True
    wanted = (state.residual & ~decisive)[prep.name_p] & prep.name_usable
    name_p, name_client = prep.name_p[wanted], prep.name_client[wanted]
    name_level, name_kc = prep.name_level[wanted], prep.name_kc[wanted]
    pair, i = state.open_invoices_of(name_client)
    p = name_p[pair]
    same_ccy = book.inv_ccy[i] == book.txn_ccy[p]
    # open invoices of this very amount over every client the payer's name may be, however
    # old: an older one of the same amount makes the newer one a guess. Invoices issued after
    # the payment (beyond the name window's few days) cannot be what it pays.
    booked = book.txn_booked[p].astype(np.int64)
    issued_before = booked >= book.inv_issued[i].astype(np.int64) - cfg.name_days_before_issue
    fits_any = same_ccy & (state.relation(p, i) == EXACT) & issued_before
    fits_count = np.bincount(p[fits_any], minlength=book.n_transactions)
    # an overdue invoice outside the name window is kept when it alone has the amount
    not_too_old = booked <= book.inv_due[i].astype(np.int64) + cfg.name_overdue_days
    single = fits_any & (fits_count[p] == 1) & not_too_old
    in_window = state.window(p, i, by_reference=False)
    # overdue invoices of the amount are looked at too: a cut reference may still single one out
    keep = same_ccy & (in_window | (fits_any & not_too_old))
    pair, p, i = pair[keep], p[keep], i[keep]
    single, in_window = single[keep], in_window[keep]
    rel = state.relation(p, i)
    same_amount, paired = _pair_equal_amounts(book, p, i, rel == EXACT, state.balance)
    typo, cut = _number_checks(book, prep, p, i)
    # the pair's open invoices in the window: rows of the same pair are contiguous
    client_open = np.bincount(pair[in_window], minlength=len(name_p))[pair].astype(np.int64)
    name_fits = fits_count[p].astype(np.int64)
    keep = (in_window | single | cut) & (paired | typo | cut)
    singles.add(
        p[keep],
        i[keep],
        VIA_NAME,
        level=name_level[pair][keep],
        key_clients=name_kc[pair][keep],
        same_amount=same_amount[keep],
        typo=typo[keep],
        cut=cut[keep],
        client_open=client_open[keep],
        name_fits=name_fits[keep],
    )
    return fits_count.astype(np.int64)


def _pair_equal_amounts(
    book: Book, p: I64, i: I64, exact: Bools, balance: I64
) -> tuple[I64, Bools]:
    """For (payment, invoice) rows of a client whose invoices carry the payment's amount: how
    many such invoices, and which rows to keep. With several equal invoices, the k-th payment
    (booking order) takes the k-th oldest invoice."""
    same_amount = np.ones(len(p), dtype=np.int64)
    keep = np.ones(len(p), dtype=bool)
    rows = np.flatnonzero(exact)
    if not len(rows):
        return same_amount, keep
    client, amount = book.inv_client[i[rows]], balance[i[rows]]
    key = np.lexsort((amount, client))
    group = np.empty(len(rows), dtype=np.int64)
    group[key] = np.cumsum(first_of_groups(client[key], amount[key])) - 1
    # the invoice's rank in (due date, id) order, a single sortable number
    age = book.inv_due[i[rows]].astype(np.int64) * (1 << 40) + i[rows]
    invoice_rank, invoices = dense_rank(group, age)
    payment_rank, _ = dense_rank(group, p[rows])
    same_amount[rows] = invoices
    keep[rows] = (invoices == 1) | (invoice_rank == payment_rank)
    return same_amount, keep


def _number_checks(book: Book, prep: Prepared, p: I64, i: I64) -> tuple[Bools, Bools]:
    """Per (payment, invoice): a reference number one typo away from, or cut from, its keys."""
    which, slot = expand(prep.ref_start[p], prep.ref_count[p])
    value = prep.refs.value[slot]
    digits = prep.refs.digits[slot]
    inv = i[which]
    id_key, num_key = book.inv_id[inv], book.inv_num_key[inv]
    typo = (digits >= 4) & (one_edit_apart(value, id_key) | one_edit_apart(value, num_key))
    # a number ending the reference may be cut at any length; with the payer and the exact
    # amount (name candidates), two digits that start the invoice's number are enough, or one
    # after the tenant's own prefix and year (`2026.3`; not after a mere word: `INV-2` is a year)
    # A number that may be the start of a year (`Facture no 20`, `RE 202`) is not taken for the
    # start of an invoice number, unless the tenant's own format already read the year.
    year = (
        book.txn_booked[p[which]].astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64)
        + 1970
    )
    year_like = is_cut_prefix(value, year) | is_cut_prefix(value, year - 1)
    cut = (
        (prep.refs.cut[slot] | prep.refs.ends[slot])
        & ((digits >= 2) | (prep.refs.kind[slot] == FORMATTED))
        & ((prep.refs.kind[slot] == FORMATTED) | ~year_like)
        & (is_cut_prefix(value, id_key) | ((num_key > 0) & is_cut_prefix(value, num_key)))
    )
    n = len(p)
    return (
        group_max(which, typo.astype(np.int64), n).astype(bool),
        group_max(which, cut.astype(np.int64), n).astype(bool),
    )


def _subset_candidates(state: _Pass, refs: _RefFacts, want_client_sums: Bools) -> _Groups:
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
    pair_p = np.concatenate([rp[by_ref], prep.name_p[strong]])
    pair_c = np.concatenate([book.inv_client[ri[by_ref]], prep.name_client[strong]])
    pair_ref = np.concatenate([np.ones(int(by_ref.sum()), bool), np.zeros(int(strong.sum()), bool)])
    pair_level = np.concatenate([np.zeros(int(by_ref.sum()), np.int64), prep.name_level[strong]])
    pair_kc = np.concatenate([np.ones(int(by_ref.sum()), np.int64), prep.name_kc[strong]])
    order = np.lexsort((~pair_ref, pair_c, pair_p))
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
    order = np.lexsort((member, problem))
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
    return _Groups(
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
    )


def _pair_set(p: I64, i: I64) -> npt.NDArray[np.uint64]:
    return np.unique(pair_key(p, i.astype(np.uint64)))


def _contains(pairs: npt.NDArray[np.uint64], p: I64, i: I64) -> Bools:
    return np.isin(pair_key(p, i.astype(np.uint64)), pairs, assume_unique=False)


def _assemble(
    state: _Pass, singles: _Singles, groups: _Groups, refs: _RefFacts, name_fits: I64
) -> Candidates:
    p = singles.column("p").astype(np.int64)
    i = singles.column("i").astype(np.int64)
    via = singles.column("via").astype(np.int64)
    by_reference = (via == VIA_REF) | (via == VIA_CUT) | (via == VIA_TYPO)
    n_single, n_groups = len(p), len(groups.group_p)
    member_p = groups.group_p[groups.member_group]
    inside = state.window(member_p, groups.member_invoice, by_reference=True)
    groups_in_window = group_min(groups.member_group, inside.astype(np.int64), n_groups, 1)
    group_p = np.concatenate([p, groups.group_p])
    ones = np.ones(n_groups, dtype=np.int64)
    n_txn = state.book.n_transactions
    has_subset = np.zeros(n_txn, dtype=bool)
    has_subset[groups.group_p[groups.via == VIA_SUBSET]] = True
    # a search that could not look at every open invoice of the client may have missed a subset
    has_subset |= groups.unsure
    full_any = np.zeros(n_txn, dtype=bool)
    prep = state.prep
    full_any[prep.name_p[(prep.name_level == 2) & prep.name_usable]] = True
    features = Features(
        via=np.concatenate([via, groups.via]),
        relation=np.concatenate([state.relation(p, i), np.full(n_groups, EXACT, np.int64)]),
        labelled=np.concatenate([singles.column("labelled"), groups.labelled]),
        name_level=np.concatenate([singles.column("level"), groups.level]),
        key_clients=np.concatenate([singles.column("key_clients"), groups.key_clients]),
        same_amount=np.concatenate([singles.column("same_amount"), ones]),
        typo_confirmed=np.concatenate([singles.column("typo"), np.zeros(n_groups, bool)]),
        cut_confirmed=np.concatenate([singles.column("cut"), np.zeros(n_groups, bool)]),
        in_window=np.concatenate([state.window(p, i, by_reference), groups_in_window >= 1]),
        conflict=refs.holds_back[group_p],
        solutions=np.concatenate([np.zeros(n_single, np.int64), groups.solutions]),
        exhaustive=np.concatenate([np.ones(n_single, bool), groups.complete]),
        contains_ref=np.concatenate([np.zeros(n_single, bool), groups.contains_ref]),
        members=np.concatenate(
            [np.ones(n_single, np.int64), np.bincount(groups.member_group, minlength=n_groups)]
        ),
        one_client=np.concatenate([np.ones(n_single, bool), groups.one_client]),
        ref_named=refs.named[group_p],
        ref_candidates=refs.count[group_p],
        client_open=np.concatenate([singles.column("client_open"), ones]),
        name_fits=np.concatenate([singles.column("name_fits"), name_fits[groups.group_p]]),
        subset_fits=np.concatenate([has_subset[p], np.zeros(n_groups, bool)]),
        payer_full_any=full_any[group_p],
    )
    return Candidates(
        group_p=group_p,
        features=features,
        member_group=np.concatenate(
            [np.arange(n_single, dtype=np.int64), groups.member_group + n_single]
        ),
        member_invoice=np.concatenate([i, groups.member_invoice]),
        conflict_invoice=refs.conflict_invoice,
        conflict_kind=refs.conflict_kind,
    )
