"""Money as integer minor units plus an ISO 4217 currency.

Amounts enter the system as decimal strings (provider payloads, CSV files) and are turned into
integers of the currency's minor unit here, with `Decimal`, never `float`. Anything that does not
fit the currency's exponent exactly is rejected rather than rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


def _codes(text: str) -> list[str]:
    return text.split()


# Active ISO 4217 codes and their minor-unit exponents (ISO 4217, list one).
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        _codes(
            "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
            "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD "
            "FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD "
            "KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD "
            "NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP "
            "SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED "
            "VES WST XCD XCG YER ZAR ZMW ZWG"
        ),
        2,
    ),
    **dict.fromkeys(
        _codes("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"), 0
    ),
    **dict.fromkeys(_codes("BHD IQD JOD KWD LYD OMR TND"), 3),
    **dict.fromkeys(_codes("CLF UYW"), 4),
}

ISO_4217_CODES: frozenset[str] = frozenset(_EXPONENTS)


class MoneyError(ValueError):
    """An amount or currency that cannot be represented exactly."""


def minor_exponent(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (2 for EUR, 0 for JPY)."""
    try:
        return _EXPONENTS[currency]
    except KeyError:
        raise MoneyError(f"unknown currency code {currency!r} (expected ISO 4217)") from None


def normalise_currency(value: str) -> str:
    """Upper-case and check an ISO 4217 code."""
    code = value.strip().upper()
    minor_exponent(code)
    return code


def to_minor(amount: str | Decimal | int, currency: str) -> int:
    """Convert a decimal amount in major units to integer minor units, exactly.

    `"12.50"` EUR is 1250; `"12.505"` EUR is an error, not a rounding.
    """
    if isinstance(amount, float):
        raise MoneyError("amounts must not be floats; pass a decimal string")
    exponent = minor_exponent(currency)
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount).strip())
    except InvalidOperation:
        raise MoneyError(f"{amount!r} is not a decimal amount") from None
    if not value.is_finite():
        raise MoneyError(f"{amount!r} is not a finite amount")
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount!r} has more decimals than {currency} allows ({exponent})")
    return int(scaled)


def to_decimal(minor: int, currency: str) -> Decimal:
    """Integer minor units back to a `Decimal` in major units with the currency's exponent."""
    exponent = minor_exponent(currency)
    return Decimal(minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def format_amount(minor: int, currency: str) -> str:
    """A decimal string in major units, as written to CSV files and reports (`"12.50"`)."""
    return str(to_decimal(minor, currency))


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: integer minor units and an ISO 4217 currency."""

    minor: int
    currency: str

    @classmethod
    def parse(cls, amount: str | Decimal | int, currency: str) -> Money:
        """Build from a decimal amount in major units."""
        code = normalise_currency(currency)
        return cls(to_minor(amount, code), code)

    def __str__(self) -> str:
        return f"{format_amount(self.minor, self.currency)} {self.currency}"
