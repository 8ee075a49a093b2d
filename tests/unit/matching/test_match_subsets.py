"""Bounded subset sums agree with brute force."""

from __future__ import annotations

from itertools import combinations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.matching.subsets import exact_subsets


@settings(max_examples=200, deadline=None)
@given(
    problems=st.lists(
        st.tuples(st.lists(st.integers(1, 40), min_size=0, max_size=7), st.integers(0, 120)),
        min_size=1,
        max_size=6,
    )
)
def test_matches_brute_force(problems: list[tuple[list[int], int]]) -> None:
    problem = np.array([k for k, (items, _) in enumerate(problems) for _ in items], np.int64)
    amount = np.array([a for items, _ in problems for a in items], dtype=np.int64)
    targets = np.array([t for _, t in problems], dtype=np.int64)
    solved = exact_subsets(problem, amount, targets, max_members=12)
    offset = 0
    for k, (items, target) in enumerate(problems):
        subsets = [
            c
            for size in range(2, len(items) + 1)
            for c in combinations(range(len(items)), size)
            if sum(items[j] for j in c) == target
        ]
        assert solved.solutions[k] == len(subsets)
        members = sorted(solved.member_row[solved.member_problem == k].tolist())
        if subsets:
            assert sum(amount[members]) == target and len(members) >= 2
            assert all(offset <= m < offset + len(items) for m in members)
        else:
            assert members == []
        offset += len(items)


def test_cap_limits_the_search() -> None:
    amount = np.array([1, 2, 4, 8, 100], dtype=np.int64)
    problem = np.zeros(5, dtype=np.int64)
    capped = exact_subsets(problem, amount, np.array([108]), max_members=4)
    assert capped.solutions[0] == 0
    full = exact_subsets(problem, amount, np.array([108]), max_members=5)
    assert full.solutions[0] == 1


def test_sums_that_wrap_int64_are_not_solutions() -> None:
    """Five invoices just under 2**62 minor units add to 2**64 + 4: a payment of 4 is no fit."""
    big = (2**64 + 4) // 5
    assert 5 * big == 2**64 + 4 and big < 2**62
    solved = exact_subsets(
        np.zeros(5, np.int64), np.full(5, big, np.int64), np.array([4], np.int64), max_members=12
    )
    assert solved.solutions.tolist() == [0] and len(solved.member_row) == 0
