"""Text cells that a spreadsheet cannot run as formulas (CSV/formula injection).

Every file this project writes for people (the `recon match` CSVs, the reports) passes its text
cells through `safe_cell`, directly or through `safe_frame` / `safe_table`. A cell that starts with
`=`, `+`, `-`, `@`, a tab or a carriage return is one a spreadsheet may evaluate
(`=HYPERLINK(...)`, `+cmd|' /C calc'!A0`, `@SUM(...)`); it is written behind a single quote, which
spreadsheets show as text and which keeps the original value readable.

Amounts are numbers, not text: the frame and table helpers leave numeric columns alone, and
columns that hold amounts as decimal strings (`-12.50`) are named in `numbers` so they stay
unescaped.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these may be run as a formula by a spreadsheet."""

ESCAPE = "'"
_LEADING = r"^[=+\-@\t\r]"

__all__ = ["FORMULA_LEADS", "safe_cell", "safe_frame", "safe_table"]


def safe_cell(text: str) -> str:
    """`text`, behind a single quote when a spreadsheet would read it as a formula."""
    if text.startswith(FORMULA_LEADS):
        return ESCAPE + text
    return text


def _is_text(series: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)


def safe_frame(frame: pd.DataFrame, *, numbers: Iterable[str] = ()) -> pd.DataFrame:
    """A copy of `frame` with every text cell made safe; numeric columns and `numbers` untouched.

    Non-string values in a text column (None, NaN, numbers in an object column) are kept as they are.
    """
    keep = set(numbers)
    safe = frame.copy()
    for column in safe.columns:
        series = safe[column]
        if column in keep or not _is_text(series):
            continue
        is_str = series.map(lambda value: isinstance(value, str)).astype(bool)
        risky = is_str & series.where(is_str, "").astype(str).str.match(_LEADING)
        if risky.any():
            safe[column] = series.where(~risky, ESCAPE + series.where(risky, "").astype(str))
    return safe


def safe_table(table: pa.Table, *, numbers: Iterable[str] = ()) -> pa.Table:
    """`table` with every string cell made safe; non-string columns and `numbers` untouched."""
    keep = set(numbers)
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name in keep or not (
            pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        ):
            columns.append(column)
            continue
        risky = pc.match_substring_regex(column, _LEADING)
        escaped = pc.binary_join_element_wise(
            pa.scalar(ESCAPE, column.type), column, pa.scalar("", column.type)
        )
        columns.append(pc.if_else(pc.fill_null(risky, False), escaped, column))
    return pa.table(columns, names=table.column_names)
