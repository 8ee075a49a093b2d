"""Small array helpers: ragged expansion, per-segment reductions, first-of-group masks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def expand(starts: I64, counts: I64) -> tuple[I64, I64]:
    """For ragged ranges [start, start+count): (which range, position) of every element."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    which = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return which, np.repeat(np.asarray(starts, dtype=np.int64), counts) + offsets


def csr(rows: I64, n: int) -> tuple[I64, I64]:
    """(start, count) per row id 0..n-1 of a row-sorted array of row ids."""
    counts = np.bincount(rows, minlength=n).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    return starts, counts


_PACK_LIMIT = 2**62
_PACK_MIN_ROWS = 4096


def lexsort(keys: Sequence[npt.NDArray[np.generic]]) -> I64:
    """`np.lexsort(keys)` (last key primary, stable), as one stable argsort of a packed key.

    Integer and boolean keys whose value ranges multiply to less than 2**62 are packed into
    one int64 (primary key most significant): the same order as `np.lexsort`, a few times
    faster at a million rows. Other keys, or short arrays, go to `np.lexsort`.
    """
    arrays = [np.asarray(key) for key in keys]
    n = len(arrays[0]) if arrays else 0
    if n < _PACK_MIN_ROWS or any(a.dtype.kind not in "biu" for a in arrays):
        return np.asarray(np.lexsort(arrays), dtype=np.int64)
    packed = np.zeros(n, dtype=np.int64)
    span = 1
    for key in reversed(arrays):
        low, high = int(key.min()), int(key.max())
        size = high - low + 1
        span *= size
        if span >= _PACK_LIMIT:
            return np.asarray(np.lexsort(arrays), dtype=np.int64)
        if key.dtype.kind == "u" and high >= _PACK_LIMIT:
            return np.asarray(np.lexsort(arrays), dtype=np.int64)
        packed *= size
        packed += key.astype(np.int64) - low
    return np.asarray(np.argsort(packed, kind="stable"), dtype=np.int64)


def first_of_groups(*keys: npt.NDArray[np.generic]) -> Bools:
    """True at the first row of each run of equal keys (rows already sorted by the keys)."""
    n = len(keys[0]) if keys else 0
    first = np.ones(n, dtype=bool)
    if n:
        change = np.zeros(n - 1, dtype=bool)
        for key in keys:
            change |= key[1:] != key[:-1]
        first[1:] = change
    return first


def group_max(group: I64, values: I64, n_groups: int, fill: int = 0) -> I64:
    """Maximum of values per group id (fill where a group has no value)."""
    out = np.full(n_groups, np.iinfo(np.int64).min, dtype=np.int64)
    if len(group):
        np.maximum.at(out, group, values)
    out[np.bincount(group, minlength=n_groups) == 0] = fill
    return out


def group_min(group: I64, values: I64, n_groups: int, fill: int) -> I64:
    """Minimum of values per group id (fill where a group has no value)."""
    out = np.full(n_groups, np.iinfo(np.int64).max, dtype=np.int64)
    if len(group):
        np.minimum.at(out, group, values)
    out[np.bincount(group, minlength=n_groups) == 0] = fill
    return out


def group_sum(group: I64, values: I64, n_groups: int) -> I64:
    """Exact integer sum of values per group id."""
    out = np.zeros(n_groups, dtype=np.int64)
    if len(group):
        np.add.at(out, group, values)
    return out


def dense_rank(group: I64, value: I64) -> tuple[I64, I64]:
    """Per row: the dense rank (1, 2, ...) of its value within its group, and how many
    distinct values its group has."""
    n = len(group)
    if not n:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = lexsort((value, group))
    g, v = group[order], value[order]
    new_group = first_of_groups(g)
    new_value = first_of_groups(g, v)
    seen = np.cumsum(new_value)
    start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    rank = seen - seen[start] + 1
    gid = np.cumsum(new_group) - 1
    distinct = np.bincount(gid, weights=new_value).astype(np.int64)[gid]
    out_rank = np.empty(n, dtype=np.int64)
    out_distinct = np.empty(n, dtype=np.int64)
    out_rank[order] = rank
    out_distinct[order] = distinct
    return out_rank, out_distinct


def rank_within(group_sorted_first: Bools) -> I64:
    """0, 1, 2, ... within runs, given the first-of-run mask of a sorted array."""
    n = len(group_sorted_first)
    index = np.arange(n, dtype=np.int64)
    starts = np.maximum.accumulate(np.where(group_sorted_first, index, 0))
    return index - starts


@dataclass(frozen=True)
class KeyIndex:
    """A hash index from integer keys to the rows holding them (several rows per key allowed).

    Lookups hash each query once, which beats binary search when the queries come in random
    order (it does not chase cache misses through a big sorted array).
    """

    index: pd.Index
    starts: I64
    counts: I64
    rows: I64

    @classmethod
    def build(cls, keys: npt.NDArray[np.integer]) -> KeyIndex:
        """Index the rows 0..len(keys)-1 by their key."""
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        first = first_of_groups(ordered)
        starts = np.flatnonzero(first).astype(np.int64)
        counts = np.diff(np.append(starts, len(ordered))).astype(np.int64)
        return cls(pd.Index(ordered[first]), starts, counts, order.astype(np.int64))

    def position(self, queries: npt.NDArray[np.integer]) -> I64:
        """Position of each query among the distinct keys, -1 where absent."""
        if not len(self.index):
            return np.full(len(queries), -1, dtype=np.int64)
        return np.asarray(self.index.get_indexer(pd.Index(queries)), dtype=np.int64)

    def count(self, queries: npt.NDArray[np.integer]) -> I64:
        """How many rows hold each query."""
        pos = self.position(queries)
        out = np.zeros(len(pos), dtype=np.int64)
        out[pos >= 0] = self.counts[pos[pos >= 0]]
        return out

    def lookup(
        self, queries: npt.NDArray[np.integer], limit: npt.NDArray[np.integer] | None = None
    ) -> tuple[I64, I64]:
        """(query position, row) for every row holding each query (skipping keys held by more
        rows than the query's limit)."""
        pos = self.position(queries)
        hit = np.flatnonzero(pos >= 0)
        counts = self.counts[pos[hit]]
        if limit is not None:
            counts = np.where(counts <= np.asarray(limit)[hit], counts, 0)
        which, slot = expand(self.starts[pos[hit]], counts)
        return hit[which], self.rows[slot]
