"""Per payment, the best candidate: automatic, for review, or ambiguous.

Precision first: a candidate is automatic only when its confidence reaches the auto threshold
*and* no other candidate of the same payment comes within the ambiguity margin of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from recon.matching.book import Book, pair_key
from recon.matching.candidates import Candidates
from recon.matching.rules import score
from recon.matching.vec import first_of_groups, group_min, lexsort, rank_within

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Decisions:
    """One row per payment that has a candidate at or above the review threshold."""

    p: I64
    group: I64
    rule: I64
    confidence: I64
    auto: Bools
    ambiguous: Bools
    runner_up: I64  # up to two other groups per payment, flattened with runner_up_p
    runner_up_p: I64
    runner_up_rule: I64
    runner_up_confidence: I64


def decide(book: Book, cands: Candidates) -> Decisions:
    """Score every candidate group, then choose per payment."""
    cfg = book.config
    rule, confidence = score(cands.features, cfg.rule_confidence)
    n_groups = len(cands.group_p)
    members = cands.features.members
    # a group is identified by its payment and its set of invoices
    signature = np.zeros(n_groups, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.add.at(
            signature,
            cands.member_group,
            pair_key(
                np.zeros(len(cands.member_invoice), np.int64),
                cands.member_invoice.astype(np.uint64),
            ),
        )
    lowest_id = group_min(
        cands.member_group, book.inv_id[cands.member_invoice], n_groups, np.iinfo(np.int64).max
    )
    eligible = np.flatnonzero(confidence >= cfg.review_threshold)
    p = cands.group_p[eligible]
    # best first within each payment: confidence, then the stronger rule, fewer invoices, lowest
    # invoice id (every key is a value, so the order does not depend on the input's order)
    order = lexsort(
        (signature[eligible], lowest_id[eligible], members[eligible], rule[eligible],
         -confidence[eligible], p)
    )  # fmt: skip
    g = eligible[order]
    # the same invoice set reached twice (by reference and by name): keep the first, the best
    with np.errstate(over="ignore"):
        identity = pair_key(cands.group_p[g], signature[g])
    g = g[~pd.Series(identity).duplicated().to_numpy()]
    gp = cands.group_p[g]
    first = first_of_groups(gp)
    rank = rank_within(first)
    best = g[first]
    best_p = gp[first]
    runners = (rank >= 1) & (rank <= 2)
    second = np.flatnonzero(rank == 1)
    second_conf = np.full(len(best), -1, dtype=np.int64)
    slot = np.searchsorted(best_p, gp[second])
    second_conf[slot] = confidence[g[second]]
    ambiguous = (second_conf >= 0) & (confidence[best] - second_conf < cfg.ambiguity_margin)
    auto = (confidence[best] >= cfg.auto_threshold) & ~ambiguous
    return Decisions(
        p=best_p,
        group=best,
        rule=rule[best],
        confidence=confidence[best],
        auto=auto,
        ambiguous=ambiguous,
        runner_up=g[runners],
        runner_up_p=gp[runners],
        runner_up_rule=rule[g[runners]],
        runner_up_confidence=confidence[g[runners]],
    )


def take(decisions: Decisions, mask: Bools) -> Decisions:
    """The decisions selected by a mask over its payments (runner-ups follow their payment)."""
    kept = decisions.p[mask]
    runner = np.isin(decisions.runner_up_p, kept)
    return Decisions(
        p=decisions.p[mask],
        group=decisions.group[mask],
        rule=decisions.rule[mask],
        confidence=decisions.confidence[mask],
        auto=decisions.auto[mask],
        ambiguous=decisions.ambiguous[mask],
        runner_up=decisions.runner_up[runner],
        runner_up_p=decisions.runner_up_p[runner],
        runner_up_rule=decisions.runner_up_rule[runner],
        runner_up_confidence=decisions.runner_up_confidence[runner],
    )
