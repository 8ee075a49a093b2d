"""The rules: small named predicates over candidate features, each with a confidence.

A candidate is a payment with one invoice, or with a set of invoices it settles together. The
first rule (highest confidence) whose predicate holds names the candidate and gives it its
confidence; a candidate no rule accepts is dropped. Rules only look at features computed by
`recon.matching.candidates`, so each rule reads like the sentence a person would say.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Bools = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]

# how the candidate was found
VIA_REF = 1  # an invoice id or number in the reference, written out in full
VIA_CUT = 2  # a number at the end of a reference cut to its bank's length, maybe incomplete
VIA_MULTI = 3  # several invoices named in the reference that add up to the payment
VIA_NAME = 4  # the payer's name is the client's, and the client has this open invoice
VIA_SUBSET = 5  # open invoices of one client that add up to the payment
VIA_TYPO = 6  # a reference number one typo away from an invoice key (no name needed)

# how the payment amount relates to what is open
EXACT = 0
FEE = 1  # short by no more than the fee tolerance
PARTIAL = 2
OVER = 3


@dataclass(frozen=True)
class Features:
    """Per candidate: what the rules may look at (one array element per candidate)."""

    via: I64
    relation: I64
    labelled: Bools  # the number was written the tenant's way or after an invoice word
    name_level: I64  # 2 full name, 1 initials, 0 no match with the client
    key_clients: I64  # how many clients share the matching name key
    same_amount: I64  # open invoices of the client with this very amount
    typo_confirmed: Bools  # a reference number is one digit off this invoice's key
    cut_confirmed: Bools  # a cut reference number is the start of this invoice's key
    in_window: Bools  # booking date plausible for the invoice dates
    conflict: Bools  # the reference also names a closed or other-currency invoice that fits
    solutions: I64  # subset sums only: how many subsets hit the amount
    exhaustive: Bools  # subset sums only: every open invoice in the window was searched
    contains_ref: Bools  # subset sums only: one of the invoices is named in the reference
    members: I64
    one_client: Bools  # every invoice of the candidate belongs to the same client
    ref_named: Bools  # the reference names an open invoice by invoice word or of the payer
    ref_candidates: I64  # open invoices in the payment's currency its reference numbers name
    client_open: I64  # name candidates only: open invoices of the client in the date window
    name_fits: I64  # open invoices of the amount over all clients the payer's name may be
    subset_fits: Bools  # single candidates: some open invoices of the payer add up as well
    payer_full_any: Bools  # the payer's full name is some client's
    payer_joint: Bools  # the payer is a joint account: each holder's name is matched apart
    payer_abbreviated: Bools  # the payer's name has an initial, so its full key is a part only
    subset_ways: I64  # subsets of one client adding up, over all clients the payer may be
    all_searched: Bools  # every client the payer's name may be had its open invoices summed

    def __len__(self) -> int:
        return len(self.via)


@dataclass(frozen=True)
class Rule:
    """A named predicate with its confidence (0-100)."""

    name: str
    confidence: int
    applies: Callable[[Features], Bools]


def all_of(*conditions: object) -> Bools:
    """Element-wise AND of boolean arrays (a rule's conditions, one per line)."""
    out = np.asarray(conditions[0], dtype=np.bool_).copy()
    for condition in conditions[1:]:
        out &= np.asarray(condition, dtype=np.bool_)
    return out


def any_of(*conditions: object) -> Bools:
    """Element-wise OR of boolean arrays."""
    out = np.asarray(conditions[0], dtype=np.bool_).copy()
    for condition in conditions[1:]:
        out |= np.asarray(condition, dtype=np.bool_)
    return out


def _via(f: Features, *ways: int) -> Bools:
    return any_of(*(f.via == way for way in ways))


def _relation(f: Features, *relations: int) -> Bools:
    return any_of(*(f.relation == relation for relation in relations))


def _payer(f: Features) -> Bools:
    return np.asarray(f.name_level >= 1, dtype=np.bool_)


def _payer_in_full(f: Features) -> Bools:
    return np.asarray(f.name_level == 2, dtype=np.bool_)


def _initials_alone(f: Features) -> Bools:
    # the client's name with initials, unless the payer's name as printed is another client's
    # in full (an abbreviated name's full key is its surname only; a joint account has two)
    return all_of(f.name_level == 1, any_of(~f.payer_full_any, f.payer_joint, f.payer_abbreviated))


def _unique_name(f: Features) -> Bools:
    return np.asarray(f.key_clients == 1, dtype=np.bool_)


def _one_way(f: Features) -> Bools:
    # one subset among all the client's open invoices, not among the first dozen searched
    return all_of(f.solutions == 1, f.exhaustive)


def ref_amount_payer(f: Features) -> Bools:
    """The reference names the invoice, the amount is its balance, the payer is the client."""
    return all_of(_via(f, VIA_REF), _relation(f, EXACT), _payer(f), f.in_window)


def ref_multi_payer(f: Features) -> Bools:
    """Several invoices in the reference add up to the payment, from their client."""
    return all_of(_via(f, VIA_MULTI), _relation(f, EXACT), _payer(f), f.one_client, f.in_window)


def ref_fee_payer(f: Features) -> Bools:
    """Named invoice, the client paid, short by no more than bank or FX fees."""
    return all_of(_via(f, VIA_REF), _relation(f, FEE), _payer(f), f.in_window)


def ref_multi(f: Features) -> Bools:
    """Invoices of one client listed in the reference add up to the payment exactly."""
    return all_of(
        _via(f, VIA_MULTI),
        _relation(f, EXACT),
        f.labelled,
        f.one_client,
        ~f.conflict,
        f.in_window,
    )


def ref_subset_sum(f: Features) -> Bools:
    """A named invoice plus other open invoices of its client add up exactly, one way only."""
    return all_of(
        _via(f, VIA_SUBSET),
        f.contains_ref,
        _one_way(f),
        any_of(f.labelled, _payer(f)),
        f.in_window,
    )


def ref_typo_payer(f: Features) -> Bools:
    """One digit off in the reference, but payer and amount say which invoice it is."""
    return all_of(_via(f, VIA_NAME), f.typo_confirmed, _relation(f, EXACT, FEE), f.in_window)


def ref_cut_payer(f: Features) -> Bools:
    """A reference cut short by the bank, completed by payer and amount (by name, an overdue
    invoice too: what is left of its number picks it among the payer's invoices)."""
    return all_of(
        any_of(
            all_of(_via(f, VIA_CUT), _payer(f), f.in_window),
            all_of(_via(f, VIA_NAME), f.cut_confirmed),
        ),
        _relation(f, EXACT, FEE),
    )


def ref_amount(f: Features) -> Bools:
    """The reference names the invoice with an invoice word, and the amount is its balance."""
    return all_of(_via(f, VIA_REF), _relation(f, EXACT), f.labelled, ~f.conflict, f.in_window)


def _unambiguous(f: Features) -> Bools:
    # an invoice word from the client, or the only open invoice the reference names, of a client
    # named in full
    return any_of(all_of(f.labelled, _payer(f)), all_of(f.ref_candidates == 1, _payer_in_full(f)))


def ref_partial_payer(f: Features) -> Bools:
    """Part payment of an unambiguously named invoice, from the client."""
    return all_of(_via(f, VIA_REF), _relation(f, PARTIAL), _unambiguous(f), f.in_window)


def ref_over_payer(f: Features) -> Bools:
    """More than the balance of an unambiguously named invoice, from the client."""
    return all_of(_via(f, VIA_REF), _relation(f, OVER), _unambiguous(f), f.in_window)


def ref_amount_bare(f: Features) -> Bools:
    """A bare number in the reference is the invoice's id, and the amount is its balance."""
    return all_of(_via(f, VIA_REF), _relation(f, EXACT), ~f.labelled, ~f.conflict, f.in_window)


def name_amount(f: Features) -> Bools:
    """No usable reference: a client with a name of its own and one open invoice of the amount."""
    return all_of(
        _via(f, VIA_NAME),
        _relation(f, EXACT),
        _payer_in_full(f),
        _unique_name(f),
        f.same_amount == 1,
        f.name_fits == 1,
        ~f.conflict,
        ~f.ref_named,
        ~f.subset_fits,
        f.in_window,
    )


def name_amount_single(f: Features) -> Bools:
    """No usable reference: of everything open to clients of the payer's name (issued by the
    payment's date, however long overdue), one invoice has exactly the amount (the name may be
    shared or printed the bank's way; of a joint account, either holder's)."""
    return all_of(
        _via(f, VIA_NAME),
        _relation(f, EXACT),
        any_of(_payer_in_full(f), _initials_alone(f)),
        f.name_fits == 1,
        ~f.conflict,
        ~f.ref_named,
        ~f.subset_fits,
    )


def name_amount_overdue(f: Features) -> Bools:
    """As name_amount_single, for a long-overdue invoice (not issued after the payment)."""
    return all_of(
        _via(f, VIA_NAME),
        _relation(f, EXACT),
        _payer(f),
        f.name_fits == 1,
        ~f.conflict,
        ~f.ref_named,
        ~f.in_window,
    )


def name_amount_initials(f: Features) -> Bools:
    """As name_amount, with the payer's first name as an initial, shared by no other client."""
    return all_of(
        _via(f, VIA_NAME),
        _relation(f, EXACT),
        f.name_level == 1,
        _unique_name(f),
        f.same_amount == 1,
        f.name_fits == 1,
        ~f.conflict,
        ~f.ref_named,
        ~f.subset_fits,
        f.in_window,
    )


def name_subset_sum(f: Features) -> Bools:
    """No usable reference: open invoices of the named client add up exactly, one way only."""
    return all_of(
        _via(f, VIA_SUBSET),
        _one_way(f),
        _payer_in_full(f),
        _unique_name(f),
        f.members <= 4,
        f.name_fits == 0,
        ~f.conflict,
        ~f.ref_named,
        f.in_window,
    )


def name_subset_single(f: Features) -> Bools:
    """No usable reference: of all the clients the payer's name may be, one set of open
    invoices of one client adds up exactly, and no single invoice has the amount."""
    return all_of(
        _via(f, VIA_SUBSET),
        _one_way(f),
        f.subset_ways == 1,
        f.all_searched,
        any_of(_payer_in_full(f), _initials_alone(f)),
        f.members <= 4,
        f.name_fits == 0,
        ~f.conflict,
        ~f.ref_named,
        f.in_window,
    )


def ref_fee(f: Features) -> Bools:
    """Named invoice, short by fees, but the payer is not the client."""
    return all_of(_via(f, VIA_REF), _relation(f, FEE), f.labelled, f.in_window)


def ref_fee_bare(f: Features) -> Bools:
    """A bare number names an invoice a little more than the payment; nothing else confirms."""
    return all_of(_via(f, VIA_REF), _relation(f, FEE), ~f.labelled, f.in_window)


def name_amount_shared(f: Features) -> Bools:
    """The payer's name is shared, or the client has several open invoices of this amount."""
    return all_of(_via(f, VIA_NAME), _relation(f, EXACT), _payer(f), f.in_window)


def ref_cut_amount(f: Features) -> Bools:
    """A cut reference number, confirmed by the amount only."""
    return all_of(_via(f, VIA_CUT), _relation(f, EXACT), f.in_window)


def ref_amount_conflict(f: Features) -> Bools:
    """The reference and amount agree, but the number also names a closed invoice that fits."""
    return all_of(_via(f, VIA_REF), _relation(f, EXACT), f.conflict, f.in_window)


def ref_partial(f: Features) -> Bools:
    """Part payment of a named invoice; the payer is not recognised."""
    return all_of(_via(f, VIA_REF), _relation(f, PARTIAL), f.labelled, f.in_window)


def ref_over(f: Features) -> Bools:
    """More than the balance of a named invoice; the payer is not recognised."""
    return all_of(_via(f, VIA_REF), _relation(f, OVER), f.labelled, f.in_window)


def ref_amount_late(f: Features) -> Bools:
    """The reference and amount agree, but the dates are far apart."""
    return all_of(_via(f, VIA_REF, VIA_MULTI), _relation(f, EXACT), ~f.in_window)


def typo_amount(f: Features) -> Bools:
    """A reference number one typo away from an invoice of exactly this amount."""
    return all_of(_via(f, VIA_TYPO), _relation(f, EXACT), f.in_window)


def subset_sum_weak(f: Features) -> Bools:
    """Open invoices of a client add up to the payment, but not surely, or two ways."""
    return all_of(_via(f, VIA_SUBSET), f.solutions >= 1, f.solutions <= 2)


def subset_sum_many(f: Features) -> Bools:
    """Open invoices of a client add up to the payment in three ways or more."""
    return all_of(_via(f, VIA_SUBSET), f.solutions >= 3)


def name_fee(f: Features) -> Bools:
    """The client paid a little less than one open invoice, and nothing names it."""
    return all_of(_via(f, VIA_NAME), _relation(f, FEE), _payer_in_full(f), f.in_window)


def ref_bare_payer(f: Features) -> Bools:
    """A bare number names an invoice of the payer, but the amount differs."""
    return all_of(
        _via(f, VIA_REF), _relation(f, PARTIAL, OVER, FEE), ~f.labelled, _payer(f), f.in_window
    )


def name_part_or_more(f: Features) -> Bools:
    """No reference; the client named in full has one open invoice, paid in part or more."""
    return all_of(
        _via(f, VIA_NAME),
        _relation(f, PARTIAL, OVER),
        _payer_in_full(f),
        f.client_open == 1,
        ~f.ref_named,
        f.in_window,
    )


RULES: tuple[Rule, ...] = (
    Rule("ref_amount_payer", 99, ref_amount_payer),
    Rule("ref_multi_payer", 98, ref_multi_payer),
    Rule("ref_fee_payer", 96, ref_fee_payer),
    Rule("ref_multi", 95, ref_multi),
    Rule("ref_subset_sum", 95, ref_subset_sum),
    Rule("ref_typo_payer", 95, ref_typo_payer),
    Rule("ref_cut_payer", 95, ref_cut_payer),
    Rule("ref_amount", 94, ref_amount),
    Rule("ref_partial_payer", 93, ref_partial_payer),
    Rule("ref_over_payer", 93, ref_over_payer),
    Rule("ref_amount_bare", 92, ref_amount_bare),
    Rule("name_amount", 91, name_amount),
    Rule("name_amount_initials", 90, name_amount_initials),
    Rule("name_amount_single", 90, name_amount_single),
    Rule("name_subset_sum", 90, name_subset_sum),
    Rule("name_subset_single", 90, name_subset_single),
    Rule("ref_fee", 88, ref_fee),
    Rule("name_amount_shared", 82, name_amount_shared),
    Rule("ref_cut_amount", 80, ref_cut_amount),
    Rule("ref_amount_conflict", 80, ref_amount_conflict),
    Rule("ref_partial", 75, ref_partial),
    Rule("ref_over", 75, ref_over),
    Rule("ref_amount_late", 70, ref_amount_late),
    Rule("typo_amount", 70, typo_amount),
    Rule("ref_fee_bare", 70, ref_fee_bare),
    Rule("name_amount_overdue", 75, name_amount_overdue),
    Rule("subset_sum_weak", 65, subset_sum_weak),
    Rule("subset_sum_many", 55, subset_sum_many),
    Rule("name_fee", 65, name_fee),
    Rule("ref_bare_payer", 60, ref_bare_payer),
    Rule("name_part_or_more", 55, name_part_or_more),
)


def score(features: Features, overrides: dict[str, int]) -> tuple[I64, I64]:
    """(rule index into RULES or -1, confidence) of each candidate: the best rule that holds."""
    n = len(features)
    ordered = sorted(
        range(len(RULES)),
        key=lambda k: (-int(overrides.get(RULES[k].name, RULES[k].confidence)), k),
    )
    rule = np.full(n, -1, dtype=np.int64)
    confidence = np.zeros(n, dtype=np.int64)
    open_rows = np.ones(n, dtype=bool)
    for k in ordered:
        if not open_rows.any():
            break
        hit = open_rows & RULES[k].applies(features)
        rule[hit] = k
        confidence[hit] = int(overrides.get(RULES[k].name, RULES[k].confidence))
        open_rows &= ~hit
    return rule, confidence
