"""The tenant's invoice numbering, learned from its invoices' `invoice_num` values.

WHMCS custom numbering puts letters, separators and dates around a sequential number
(`ABC12345`, `INV-2026-00042`, `2026/1234`, `12345-DE`, `R26-0042`), and a tenant changes it over
the years. Each value is reduced to a shape (digit runs become `#`); every shape common enough is
turned into a format in the engine's `{YEAR}`/`{YY}`/`{NUMBER}` syntax by checking which digit
runs are the year the invoice was issued. A configured format overrides what is learned.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

DEFAULT_FORMAT = "{NUMBER}"
MAX_FORMATS = 8
# a shape must cover this share of the numbered invoices (and at least MIN_INVOICES of them)
MIN_SHARE = 0.01
MIN_INVOICES = 3
# a digit run is the year of issue when it is for this share of the invoices of the shape
YEAR_SHARE = 0.95
_EPOCH_YEAR = np.datetime64("1970", "Y")


def _years(issued_days: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    days = np.asarray(issued_days, dtype="datetime64[D]")
    return np.asarray(days.astype("datetime64[Y]") - _EPOCH_YEAR, dtype=np.int64) + 1970


def number_formats(
    configured: str, invoice_nums: pa.Array, issued_days: npt.NDArray[np.integer]
) -> tuple[str, ...]:
    """The formats to look for: the configured one if set, else those learned from the data."""
    if configured != DEFAULT_FORMAT:
        return (configured,)
    return learn_formats(invoice_nums, issued_days)


def learn_formats(invoice_nums: pa.Array, issued_days: npt.NDArray[np.integer]) -> tuple[str, ...]:
    """Formats of the non-empty invoice numbers, most specific first (at most MAX_FORMATS).

    Deterministic: depends only on the multiset of (invoice_num, year issued) values.
    """
    nums = pc.utf8_upper(pc.utf8_trim_whitespace(pc.cast(invoice_nums, pa.large_string())))
    nums = nums.fill_null("")
    present = pc.not_equal(nums, "").to_numpy(zero_copy_only=False)
    if not present.any():
        return (DEFAULT_FORMAT,)
    rows = np.flatnonzero(present)
    nums = nums.take(pa.array(rows))
    years = _years(np.asarray(issued_days)[rows])
    shapes = pc.replace_substring_regex(nums, pattern=r"\d+", replacement="#")
    counts = pc.value_counts(shapes)
    values = counts.field("values").to_pylist()
    sizes = counts.field("counts").to_numpy().astype(np.int64)
    floor = max(MIN_INVOICES, int(MIN_SHARE * len(rows)))
    ranked = sorted(
        ((int(c), str(v)) for v, c in zip(values, sizes, strict=True) if c >= floor),
        key=lambda item: (-item[0], item[1]),
    )[:MAX_FORMATS]
    found: list[str] = []
    for _, shape in ranked:
        mask = pc.equal(shapes, shape)
        fmt = _shape_format(shape, nums.filter(mask), years[mask.to_numpy(zero_copy_only=False)])
        if fmt is not None and fmt not in found:
            found.append(fmt)
    if not found:
        return (DEFAULT_FORMAT,)
    # most literal text first, so a specific format marks its numbers before a looser one
    found.sort(key=lambda f: (-len(re.sub(r"\{[A-Z]+\}", "", f)), f))
    return tuple(found)


def _shape_format(shape: str, nums: pa.Array, years: npt.NDArray[np.int64]) -> str | None:
    literal = shape.replace("{", "").replace("}", "")
    runs = literal.count("#")
    if runs == 0 or runs > 3 or not re.fullmatch(r"[A-Z0-9#\W_]*", literal):
        return None
    groups = [pc.extract_regex(nums, _nth_group(literal, k)).field("g") for k in range(runs)]
    roles: list[str] = []
    for group in groups:
        length = pc.utf8_length(group).to_numpy(zero_copy_only=False)
        as_int = pc.cast(group, pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)
        if np.all(length == 4) and np.mean(as_int == years) >= YEAR_SHARE:
            roles.append("{YEAR}")
        elif np.all(length == 2) and np.mean(as_int == years % 100) >= YEAR_SHARE:
            roles.append("{YY}")
        else:
            roles.append("?")
    unknown = [k for k, role in enumerate(roles) if role == "?"]
    if len(unknown) != 1:
        return None
    roles[unknown[0]] = "{NUMBER}"
    if runs == 1 and roles[0] == "{NUMBER}":
        # one digit run that starts with the year of issue: {YEAR}{NUMBER} glued
        group = groups[0]
        head = pc.cast(pc.utf8_slice_codeunits(group, 0, 4), pa.int64())
        long_enough = pc.utf8_length(group).to_numpy(zero_copy_only=False) >= 7
        starts = head.to_numpy(zero_copy_only=False).astype(np.int64) == years
        if np.all(long_enough) and np.mean(starts) >= YEAR_SHARE:
            roles[0] = "{YEAR}{NUMBER}"
    out = []
    k = 0
    for c in literal:
        if c == "#":
            out.append(roles[k])
            k += 1
        else:
            out.append(c)
    return "".join(out)


def _nth_group(literal: str, n: int) -> str:
    """A pattern capturing the n-th digit run of a shape as group `g`."""
    out = ["^"]
    k = 0
    for c in literal:
        if c == "#":
            out.append(r"(?P<g>\d+)" if k == n else r"\d+")
            k += 1
        else:
            out.append(re.escape(c))
    out.append("$")
    return "".join(out)
