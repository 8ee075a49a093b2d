"""The vectorised parsers at the file edge agree with `Decimal` (`recon.money`) exactly."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recon.matching.parsing import format_minor, parse_days, parse_minor
from recon.money import MoneyError, format_amount, minor_exponent, to_minor

CURRENCIES = ("EUR", "JPY", "BHD", "CLF")


def _oracle(text: str, currency: str) -> int | None:
    """What `Decimal` says, and amounts int64 cannot hold are refused too."""
    try:
        value = to_minor(text, currency)
    except MoneyError:
        return None
    return value if -(2**62) < value < 2**62 else None


decimal_text = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=None).map(str),
    st.from_regex(r"[+-]?\d{1,16}(\.\d{0,6})?", fullmatch=True),
    st.from_regex(r" ?-?\d{0,3}[.,]?\d{0,3} ?", fullmatch=True),
    st.sampled_from(["", "-", ".", "1e3", "NaN", "Infinity", "12.5.0", "1_000", "0x10", "٣"]),
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.tuples(decimal_text, st.sampled_from(CURRENCIES)), max_size=12))
@example(values=[("12.50", "EUR"), ("12.505", "EUR"), ("12.500", "EUR"), ("-0.01", "EUR")])
@example(values=[("100", "JPY"), ("100.0", "JPY"), ("100.5", "JPY"), ("1.2345", "CLF")])
def test_parse_minor_is_decimal_exact(values: list[tuple[str, str]]) -> None:
    texts = [t for t, _ in values]
    exps = np.array([minor_exponent(c) for _, c in values], dtype=np.int64)
    parsed, failure = parse_minor(texts, exps)
    expected = [_oracle(t, c) for t, c in values]
    first_bad = next((k for k, e in enumerate(expected) if e is None), None)
    if first_bad is None:
        assert failure is None
        assert parsed.tolist() == expected
    else:
        assert failure is not None
        assert failure.position == first_bad
        assert parsed[:first_bad].tolist() == expected[:first_bad]


def test_parse_minor_names_the_reason() -> None:
    _, failure = parse_minor(["1.00", "12.345"], np.array([2, 2]))
    assert failure is not None and failure.position == 1
    assert "more decimals" in failure.reason
    _, failure = parse_minor(["abc"], np.array([2]))
    assert failure is not None and failure.reason == "is not a decimal amount"


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.tuples(st.integers(-(10**15), 10**15), st.sampled_from(CURRENCIES)), max_size=20
    )
)
def test_format_minor_matches_format_amount(values: list[tuple[int, str]]) -> None:
    minor = np.array([v for v, _ in values], dtype=np.int64)
    exps = np.array([minor_exponent(c) for _, c in values], dtype=np.int64)
    text = format_minor(minor, exps).to_pylist()
    assert text == [format_amount(v, c) for v, c in values]
    # and back again
    parsed, failure = parse_minor(text, exps)
    assert failure is None and parsed.tolist() == minor.tolist()


def test_parse_days() -> None:
    texts = ["1970-01-02", "2026-02-28", "2024-02-29"]
    days, failure = parse_days(texts)
    assert failure is None
    epoch = date(1970, 1, 1)
    assert days.tolist() == [(date.fromisoformat(t) - epoch).days for t in texts]
    for bad in ("2026-02-30", "2026-2-3", "03/15/2026", "", "2026-13-01"):
        _, failure = parse_days(["2026-01-01", bad])
        assert failure is not None and failure.position == 1, bad


def test_no_float_anywhere() -> None:
    # a value no binary float holds exactly survives the round trip unchanged
    value = "90071992547409.93"
    parsed, _ = parse_minor([value], np.array([2]))
    assert parsed[0] == int(Decimal(value) * 100)
    assert format_minor(parsed, np.array([2])).to_pylist() == [value]
