"""Exact, vectorised conversions at the file edge: decimal strings, ISO dates, back to text.

The fast path handles the plain forms (`"12.50"`, `"-3"`, `"0.5"`) with Arrow kernels. Every value
the fast path does not accept is handed to `recon.money.to_minor`, so the result is exactly what
`Decimal` gives, or the same rejection: nothing is ever rounded and no float is involved. Amounts
are int64 inside the engine, so magnitudes of 2**62 minor units or more are refused as too large.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from recon.money import MoneyError, minor_exponent, to_minor

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
Bools = npt.NDArray[np.bool_]

_PLAIN_DECIMAL = r"^(?P<sign>[+-]?)(?P<int>\d{1,14})(?:\.(?P<frac>\d*))?$"
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_EPOCH = np.datetime64("1970-01-01", "D")


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """The first value that could not be parsed: its position and a reason for a person."""

    position: int
    value: str
    reason: str


def _as_arrow(values: pd.Series | Sequence[str]) -> pa.Array:
    array = pa.array(values, type=pa.large_string(), from_pandas=True)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def parse_minor(
    values: pd.Series | Sequence[str], exponents: npt.NDArray[np.integer]
) -> tuple[I64, ParseFailure | None]:
    """Decimal strings to integer minor units, row by row with each row's currency exponent.

    Returns the amounts and the first failure (or None). Rows after a failure are unspecified.
    """
    array = _as_arrow(values)
    n = len(array)
    exps = np.asarray(exponents, dtype=np.int64)
    out = np.zeros(n, dtype=np.int64)
    if n == 0:
        return out, None
    parts = pc.extract_regex(array, _PLAIN_DECIMAL)
    plain = parts.is_valid().to_numpy(zero_copy_only=False)
    sign = pc.equal(parts.field("sign"), "-").fill_null(False).to_numpy(zero_copy_only=False)
    frac = pc.utf8_rtrim(parts.field("frac"), characters="0")
    frac_len = pc.utf8_length(frac).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    whole = pc.cast(pc.if_else(parts.is_valid(), parts.field("int"), "0"), pa.int64())
    whole_np = whole.to_numpy(zero_copy_only=False).astype(np.int64)
    fast = plain & (frac_len <= exps) & (exps <= 4)
    for exp in np.unique(exps[fast]):
        rows = np.flatnonzero(fast & (exps == exp))
        scale = np.int64(10) ** np.int64(exp)
        value = whole_np[rows] * scale
        if exp > 0:
            padded = pc.utf8_rpad(pc.take(frac, pa.array(rows)).fill_null(""), int(exp), "0")
            digits = pc.cast(pc.if_else(pc.equal(padded, ""), "0", padded), pa.int64())
            value = value + digits.to_numpy(zero_copy_only=False).astype(np.int64)
        out[rows] = np.where(sign[rows], -value, value)
    slow = np.flatnonzero(~fast)
    if len(slow):
        texts = array.take(pa.array(slow)).to_pylist()
        for position, text in zip(slow.tolist(), texts, strict=True):
            failure = _slow_minor(out, position, text, int(exps[position]))
            if failure is not None:
                return out, failure
    return out, None


def _slow_minor(out: I64, position: int, text: str | None, exponent: int) -> ParseFailure | None:
    shown = "" if text is None else text
    if text is None or not text.strip():
        return ParseFailure(position, shown, "is empty")
    try:
        value = to_minor(text, _currency_with_exponent(exponent))
    except MoneyError as exc:
        return ParseFailure(position, shown, _reason(str(exc)))
    if not -(2**62) < value < 2**62:
        return ParseFailure(position, shown, "is too large")
    out[position] = value
    return None


def _reason(message: str) -> str:
    if "more decimals" in message:
        return "has more decimals than the currency allows"
    if "finite" in message:
        return "is not a finite amount"
    return "is not a decimal amount"


_CURRENCY_BY_EXPONENT = {0: "JPY", 2: "EUR", 3: "BHD", 4: "CLF"}


def _currency_with_exponent(exponent: int) -> str:
    currency = _CURRENCY_BY_EXPONENT[exponent]
    assert minor_exponent(currency) == exponent
    return currency


def parse_days(values: pd.Series | Sequence[str]) -> tuple[I32, ParseFailure | None]:
    """ISO `YYYY-MM-DD` strings to days since 1970-01-01; the first failure, if any.

    Dates repeat (a few hundred distinct days in a million rows): each distinct text is parsed
    once and the result handed to its rows.
    """
    array = _as_arrow(values)
    n = len(array)
    if n == 0:
        return np.zeros(0, dtype=np.int32), None
    encoded = pc.dictionary_encode(array)
    distinct = encoded.dictionary
    shaped = pc.match_substring_regex(distinct, _ISO_DATE).fill_null(False)
    parsed = pc.strptime(
        pc.if_else(shaped, distinct, "1970-01-01"), format="%Y-%m-%d", unit="s", error_is_null=True
    )
    # strptime rolls 2026-02-30 over into March; a round trip catches it.
    again = pc.strftime(parsed, format="%Y-%m-%d")
    ok_distinct = pc.and_(shaped, pc.equal(again, distinct).fill_null(False))
    days_distinct = pc.cast(pc.cast(parsed, pa.date32()), pa.int32()).fill_null(0)
    index = encoded.indices.to_numpy(zero_copy_only=False)
    ok = ok_distinct.to_numpy(zero_copy_only=False)[index]
    out = np.asarray(days_distinct.to_numpy(zero_copy_only=False)[index], dtype=np.int32)
    bad = np.flatnonzero(~ok)
    if len(bad):
        first = int(bad[0])
        text = array[first].as_py()
        reason = "is empty" if not text else "is not a date (expected YYYY-MM-DD)"
        return out, ParseFailure(first, text or "", reason)
    return out, None


def format_minor(minor: npt.NDArray[np.int64], exponents: npt.NDArray[np.integer]) -> pa.Array:
    """Integer minor units to decimal strings (`1250`, 2 → `"12.50"`), like `format_amount`."""
    amounts = np.asarray(minor, dtype=np.int64)
    exps = np.asarray(exponents, dtype=np.int64)
    n = len(amounts)
    result: list[pa.Array] = []
    order: list[npt.NDArray[np.intp]] = []
    for exp in np.unique(exps):
        rows = np.flatnonzero(exps == exp)
        value = amounts[rows]
        magnitude = np.abs(value)
        scale = np.int64(10) ** np.int64(exp)
        whole = pc.cast(pa.array(magnitude // scale), pa.large_string())
        if exp > 0:
            frac = pc.utf8_lpad(
                pc.cast(pa.array(magnitude % scale), pa.large_string()), int(exp), "0"
            )
            text = pc.binary_join_element_wise(whole, frac, pa.scalar(".", pa.large_string()))
        else:
            text = whole
        signed = pc.binary_join_element_wise(
            pa.scalar("-", pa.large_string()), text, pa.scalar("", pa.large_string())
        )
        text = pc.if_else(pa.array(value < 0), signed, text)
        result.append(text)
        order.append(rows)
    if not result:
        return pa.array([], type=pa.large_string())
    merged = pa.concat_arrays(result)
    positions = np.concatenate(order)
    inverse = np.empty(n, dtype=np.int64)
    inverse[positions] = np.arange(n)
    return merged.take(pa.array(inverse))


def days_to_iso(days: npt.NDArray[np.integer]) -> list[str]:
    """Days since 1970-01-01 back to ISO strings (for messages and small outputs)."""
    return [str(d) for d in (_EPOCH + np.asarray(days, dtype="timedelta64[D]"))]
