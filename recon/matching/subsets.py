"""Bounded subset sums: which open invoices of one client add up to a payment exactly.

Each problem is small (capped at a dozen invoices, so at most 4096 subsets) and all problems of
the same size are solved together as one array: the sums of every subset are built by doubling
(the sums without invoice k, then the same plus invoice k), compared with the payment, counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]

_MAX_CELLS = 1 << 22


@dataclass(frozen=True)
class SubsetSolutions:
    """Per problem: how many subsets (of two or more) hit the target, and the first one found.

    `complete` says the search saw every row of the problem (none beyond `max_members`): only
    then is `solutions` the true count rather than a lower bound.

    `member_problem`/`member_row` list the rows (positions in the input) of the first solution;
    "first" is the subset with the lowest bit mask, i.e. the one using the earliest rows.
    """

    solutions: I64
    complete: npt.NDArray[np.bool_]
    member_problem: I64
    member_row: I64


def exact_subsets(problem: I64, amount: I64, targets: I64, max_members: int) -> SubsetSolutions:
    """Solve subset-sum problems given as rows (problem id, amount), rows grouped by problem.

    Problem ids are 0..len(targets)-1; rows of a problem beyond `max_members` are ignored (the
    caller orders rows so the most likely invoices come first).
    """
    n_problems = len(targets)
    solutions = np.zeros(n_problems, dtype=np.int64)
    if len(problem) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return SubsetSolutions(solutions, np.ones(n_problems, dtype=bool), empty, empty)
    order = np.argsort(problem, kind="stable")
    problem_sorted = problem[order]
    counts = np.bincount(problem_sorted, minlength=n_problems).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    sizes = np.minimum(counts, max_members)
    complete = counts <= max_members
    found_problem: list[I64] = []
    found_row: list[I64] = []
    for size in np.unique(sizes[sizes >= 2]):
        size = int(size)
        ids = np.flatnonzero(sizes == size)
        bits = (np.arange(1 << size)[:, None] >> np.arange(size)[None, :]) & 1
        big_enough = bits.sum(axis=1) >= 2
        step = max(1, _MAX_CELLS >> size)
        for lo in range(0, len(ids), step):
            chunk = ids[lo : lo + step]
            positions = starts[chunk][:, None] + np.arange(size)[None, :]
            values = amount[order[positions]]
            # Sums saturate one past the target: amounts (balances, never negative) reach 2**62,
            # so a plain int64 sum of a dozen could wrap round onto the target.
            cap = np.maximum(targets[chunk], -1)[:, None] + 1
            sums = np.zeros((len(chunk), 1), dtype=np.int64)
            for k in range(size):
                step_up = np.minimum(values[:, k : k + 1], cap - sums)
                sums = np.concatenate([sums, sums + step_up], axis=1)
            hit = (sums == targets[chunk][:, None]) & big_enough[None, :]
            solutions[chunk] = hit.sum(axis=1)
            solved = np.flatnonzero(solutions[chunk] > 0)
            if len(solved):
                first_mask = np.argmax(hit[solved], axis=1)
                member_bits = bits[first_mask].astype(bool)
                rows = order[positions[solved]][member_bits]
                probs = np.repeat(chunk[solved], member_bits.sum(axis=1))
                found_problem.append(probs.astype(np.int64))
                found_row.append(rows.astype(np.int64))
    if found_problem:
        return SubsetSolutions(
            solutions, complete, np.concatenate(found_problem), np.concatenate(found_row)
        )
    empty = np.zeros(0, dtype=np.int64)
    return SubsetSolutions(solutions, complete, empty, empty)
