"""Arrow text helpers, the array types and the transactions being built (`_Txns`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from recon.matching.parsing import format_minor
from recon.money import minor_exponent

I64 = npt.NDArray[np.int64]


Bools = npt.NDArray[np.bool_]


Text: TypeAlias = Any  # an Arrow string array (pyarrow has no type stubs)


_LS = pa.large_string()


def _text(values: Sequence[str] | npt.NDArray[np.object_]) -> Text:
    return pa.array(values, type=_LS)


def _num(values: npt.NDArray[np.integer]) -> Text:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), _LS)


def _cat(*parts: Text | str) -> Text:
    arrays = [p if isinstance(p, pa.Array) else pa.scalar(p, _LS) for p in parts]
    return pc.binary_join_element_wise(*arrays, pa.scalar("", _LS))


def _pick(words: Sequence[str], index: npt.NDArray[np.integer]) -> Text:
    return _text(words).take(pa.array(np.asarray(index, dtype=np.int64)))


def _scatter(n: int, parts: list[tuple[I64, Text]]) -> Text:
    """Assemble a column from pieces built for subsets of rows."""
    rows = np.concatenate([r for r, _ in parts]) if parts else np.zeros(0, np.int64)
    if len(rows) != n or (n and np.bincount(rows, minlength=n).max() != 1):
        raise ValueError("pieces must cover every row exactly once")
    merged = pa.concat_arrays([t.cast(_LS) for _, t in parts]) if parts else _text([])
    inverse = np.empty(n, dtype=np.int64)
    inverse[rows] = np.arange(n)
    return merged.take(pa.array(inverse))


def _choose(
    rng: np.random.Generator, n: int, weights: Sequence[float] | npt.NDArray[np.floating]
) -> I64:
    w = np.asarray(weights, dtype=float)
    return np.asarray(rng.choice(len(w), size=n, p=w / w.sum()), dtype=np.int64)


def _iso(days: npt.NDArray[np.integer]) -> Text:
    return pc.cast(pa.array(np.asarray(days, dtype=np.int32), type=pa.date32()), _LS)


def _dotted(days: npt.NDArray[np.integer]) -> Text:
    stamps = pc.cast(
        pa.array(np.asarray(days, dtype=np.int32), type=pa.date32()), pa.timestamp("s")
    )
    return pc.cast(pc.strftime(stamps, format="%d.%m.%Y"), _LS)


def _ids(prefix: str, serial: I64, width: int, salt: int) -> Text:
    """Unique, random-looking ids (ch_3Nx...): the last ten characters are a bijection of the
    serial number (unique), the others are scrambled from it (random-looking)."""
    alphabet = np.frombuffer(
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8
    )
    unique = serial.astype(np.uint64) % np.uint64(62**10)
    unique = (unique * np.uint64(7_919_000_003) + np.uint64(salt)) % np.uint64(62**10)
    with np.errstate(over="ignore"):
        scrambled = serial.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt)
    chars = np.empty((len(serial), width), dtype=np.uint8)
    for k in range(width):
        source = unique if k < 10 else scrambled
        chars[:, width - 1 - k] = alphabet[(source % np.uint64(62)).astype(np.int64)]
        if k < 10:
            unique //= np.uint64(62)
        else:
            scrambled //= np.uint64(62)
    body = pa.array(chars.reshape(-1).view(f"S{width}"), type=pa.binary(width))
    return _cat(prefix, pc.cast(body, _LS))


def _money(minor: I64, currency: npt.NDArray[np.object_]) -> Text:
    codes, uniques = pd.factorize(np.asarray(currency, dtype=object))
    table = np.array([minor_exponent(str(c)) for c in uniques], dtype=np.int64)
    return format_minor(np.asarray(minor, dtype=np.int64), table[codes])


@dataclass
class _Txns:
    """Transactions being built, with their truth."""

    ids: list[Text] = field(default_factory=list)
    source: list[npt.NDArray[np.object_]] = field(default_factory=list)
    booked: list[I64] = field(default_factory=list)
    amount: list[I64] = field(default_factory=list)
    currency: list[npt.NDArray[np.object_]] = field(default_factory=list)
    payer: list[Text] = field(default_factory=list)
    reference: list[Text] = field(default_factory=list)
    case: list[npt.NDArray[np.object_]] = field(default_factory=list)
    expected: list[npt.NDArray[np.object_]] = field(default_factory=list)
    customer: list[Bools] = field(default_factory=list)

    def add(
        self,
        ids: Text,
        source: str,
        booked: I64,
        amount: I64,
        currency: npt.NDArray[np.object_],
        payer: Text,
        reference: Text,
        case: str | npt.NDArray[np.object_],
        expected: str | npt.NDArray[np.object_],
        customer: bool,
    ) -> None:
        n = len(ids)
        self.ids.append(ids.cast(_LS))
        self.source.append(np.full(n, source, dtype=object))
        self.booked.append(np.asarray(booked, dtype=np.int64))
        self.amount.append(np.asarray(amount, dtype=np.int64))
        self.currency.append(np.asarray(currency, dtype=object))
        self.payer.append(payer.cast(_LS))
        self.reference.append(reference.cast(_LS))
        self.case.append(np.broadcast_to(np.asarray(case, dtype=object), (n,)).copy())
        self.expected.append(np.broadcast_to(np.asarray(expected, dtype=object), (n,)).copy())
        self.customer.append(np.full(n, customer, dtype=bool))


def _table(columns: dict[str, Text | npt.NDArray[np.generic]]) -> pd.DataFrame:
    """A frame of text columns (pandas `str`, Arrow-backed) without a round trip via Python."""
    arrays = {
        name: (value if isinstance(value, pa.Array) else pa.array(value)).cast(_LS)
        if not (isinstance(value, np.ndarray) and value.dtype == bool)
        else pa.array(value)
        for name, value in columns.items()
    }
    frame: pd.DataFrame = pa.table(arrays).to_pandas()
    return frame
