from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recon.money import Money, MoneyError, format_amount, minor_exponent, to_decimal, to_minor


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("12.50", "EUR", 1250), ("-0.01", "GBP", -1), ("1000", "JPY", 1000), ("1.234", "KWD", 1234)],
)
def test_to_minor_is_exact(amount: str, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor


@pytest.mark.parametrize("amount", ["12.505", "abc", "NaN", "Infinity", ""])
def test_to_minor_rejects_what_it_cannot_represent(amount: str) -> None:
    with pytest.raises(MoneyError):
        to_minor(amount, "EUR")


def test_floats_are_refused() -> None:
    with pytest.raises(MoneyError, match="float"):
        to_minor(12.5, "EUR")  # type: ignore[arg-type]


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(MoneyError, match="XXZ"):
        minor_exponent("XXZ")


def test_money_parse_normalises_currency() -> None:
    assert Money.parse(" 7.10 ", "eur") == Money(710, "EUR")
    assert str(Money(710, "EUR")) == "7.10 EUR"


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(["EUR", "JPY", "BHD"]))
def test_round_trip_through_decimal_strings(minor: int, currency: str) -> None:
    text = format_amount(minor, currency)
    assert to_minor(text, currency) == minor
    assert to_decimal(minor, currency) == Decimal(text)
