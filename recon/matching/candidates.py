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

from recon.matching.book import Book
from recon.matching.pass_state import PassState, RefFacts, Singles, relation
from recon.matching.prepare import Prepared
from recon.matching.references import FORMATTED, LABELLED, is_cut_prefix, one_edit_apart
from recon.matching.rules import (
    EXACT,
    FEE,
    OVER,
    PARTIAL,
    VIA_CUT,
    VIA_NAME,
    VIA_REF,
    VIA_SUBSET,
    VIA_TYPO,
    Features,
)
from recon.matching.subset_candidates import Groups, subset_candidates
from recon.matching.variants import variant_candidates
from recon.matching.vec import (
    csr,
    dense_rank,
    expand,
    first_of_groups,
    group_max,
    group_min,
    lexsort,
)

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

NO_CONFLICT, CLOSED, OTHER_CURRENCY = 0, 1, 2

__all__ = [
    "CLOSED",
    "NO_CONFLICT",
    "OTHER_CURRENCY",
    "OVER",
    "PARTIAL",
    "Candidates",
    "build_candidates",
    "relation",
]


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


def build_candidates(
    book: Book, prep: Prepared, residual: Bools, balance: I64, suggestions: bool = True
) -> Candidates:
    """Every candidate of the residual payments against the invoices open at `balance`.

    Without `suggestions`, the typo-variant and cut-completion tier is left out: it only ever
    gives suggestions for review (for payments with no other candidate), so the passes that
    look for automatic allocations can skip it.
    """
    state = _pass_state(book, prep, residual, balance)
    singles = Singles([])
    refs = _reference_candidates(state, singles)
    name_fits = _name_candidates(state, refs, singles)
    exact = np.zeros(book.n_transactions, dtype=bool)
    exact[refs.p[state.relation(refs.p, refs.i) == EXACT]] = True
    # a payer's open invoices are summed even when one of them has the amount: if a subset
    # fits too, the single invoice is only a guess
    groups = subset_candidates(state, refs, residual & ~exact)
    if suggestions:
        placed = np.zeros(book.n_transactions, dtype=bool)
        placed[singles.column("p")] = True
        placed[groups.group_p] = True
        variant_candidates(state, residual & ~placed, singles)
    return _assemble(state, singles, groups, refs, name_fits)


def _pass_state(book: Book, prep: Prepared, residual: Bools, balance: I64) -> PassState:
    is_open = book.inv_open_status & (balance > 0)
    by_client = book.by_client[is_open[book.by_client]]
    start, count = csr(book.inv_client[by_client], int(book.inv_client.max(initial=-1)) + 1)
    return PassState(book, prep, residual, balance, is_open, by_client, start, count)


def _reference_candidates(state: PassState, singles: Singles) -> RefFacts:
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
    order = lexsort((i[conflicting], ~fits[conflicting], p[conflicting]))
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
    return RefFacts(
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


def _name_candidates(state: PassState, refs: RefFacts, singles: Singles) -> I64:
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
    many such invoices, and which rows to keep.

    With several equal invoices, each payment is paired with the newest one issued before it
    that a later payment has not taken (latest payment first): a payer pays the invoice it has
    just been sent, and an older one of the same amount still open is more often one left
    unpaid than one paid late."""
    same_amount = np.ones(len(p), dtype=np.int64)
    keep = np.ones(len(p), dtype=bool)
    rows = np.flatnonzero(exact)
    if not len(rows):
        return same_amount, keep
    client, amount = book.inv_client[i[rows]], balance[i[rows]]
    key = lexsort((amount, client))
    group = np.empty(len(rows), dtype=np.int64)
    group[key] = np.cumsum(first_of_groups(client[key], amount[key])) - 1
    _, invoices = dense_rank(group, i[rows])
    same_amount[rows] = invoices
    several = invoices > 1
    rows, group = rows[several], group[several]
    keep[rows] = False
    keep[rows[_newest_pairs(book, p[rows], i[rows], group)]] = True
    return same_amount, keep


def _newest_pairs(book: Book, p: I64, i: I64, group: I64) -> I64:
    """Rows (indexes into p, i) pairing payments with equal invoices of their group: latest
    payment first, each takes the newest invoice of its rows that no later payment took."""
    booked = book.txn_booked[p].astype(np.int64)
    issued = book.inv_issued[i].astype(np.int64)
    order = lexsort((-book.inv_id[i], -issued, -p, -booked, group))
    chosen: list[int] = []
    taken: set[tuple[int, int]] = set()
    paired: set[tuple[int, int]] = set()
    for row, g, payment, invoice in zip(
        order.tolist(), group[order].tolist(), p[order].tolist(), i[order].tolist(), strict=True
    ):
        if (g, payment) in paired or (g, invoice) in taken:
            continue
        paired.add((g, payment))
        taken.add((g, invoice))
        chosen.append(row)
    return np.asarray(chosen, dtype=np.int64)


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


def _assemble(
    state: PassState, singles: Singles, groups: Groups, refs: RefFacts, name_fits: I64
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
        payer_joint=prep.joint[group_p],
        payer_abbreviated=prep.abbreviated[group_p],
        subset_ways=groups.ways[group_p],
        all_searched=~groups.unsearched[group_p] & ~groups.unsure[group_p],
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
