"""Tenant invoice numbering (WHMCS custom formats) and how payers and banks write the number."""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass

Formatter = Callable[[int, int], str]


def _letters(prefix: str) -> Formatter:
    return lambda y, n: f"{prefix}{n:05d}"


def _country(code: str) -> Formatter:
    return lambda y, n: f"{n:05d}-{code}"


@dataclass(frozen=True)
class Numbering:
    """One format of a tenant: a name, how to print (year, sequence), the sequence's digits."""

    name: str
    printer: Formatter
    width: int


def tenant_formats(rng: random.Random) -> list[Numbering]:
    """One to three formats a tenant used over the years (newest last)."""
    letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.choice((2, 3))))
    country = rng.choice(("DE", "PL", "ES", "NL", "SE"))
    pool = [
        Numbering(f"{letters}NNNNN", _letters(letters), 5),
        Numbering("INV-YYYY-NNNNN", lambda y, n: f"INV-{y}-{n:05d}", 5),
        Numbering("YYYY/N", lambda y, n: f"{y}/{n}", 4),
        Numbering(f"NNNNN-{country}", _country(country), 5),
        Numbering("RYY-NNNN", lambda y, n: f"R{y % 100:02d}-{n:04d}", 4),
        Numbering("FYYYYNNNNNN", lambda y, n: f"F{y}{n:06d}", 6),
        Numbering("YYYY.NNNN", lambda y, n: f"{y}.{n:04d}", 4),
    ]
    rng.shuffle(pool)
    return pool[: rng.choice((1, 2, 2, 3))]


NOISE_WORDS = {
    "pl": ["Faktura", "FV", "Zaplata za fakture", "Płatność"],
    "cs": ["Faktura", "Platba faktury", "VS"],
    "es": ["Factura", "Pago factura", "Fra."],
    "pt": ["Fatura", "Pagamento fatura", "FT"],
    "nl": ["Factuur", "Betaling factuur", "Factuurnr"],
    "sv": ["Faktura", "Betalning faktura", "Fakt.nr"],
    "tr": ["Fatura", "Fatura no", "Ödeme"],
    "fr": ["Facture", "Règlement facture", "Fact. n°"],
}
BANK_PREFIX = [
    "",
    "",
    "",
    "SEPA CT ",
    "/RFB/",
    "EREF+NOTPROVIDED SVWZ+",
    "TRF ",
    "Transferencia ",
    "PRZELEW ",
]
DECOYS = [
    "klient {c}",
    "Kd.Nr. {c}",
    "cust {c}",
    "tel 6{p}",
    "zam. {o}",
    "pedido {o}",
    "{d}",
]


def decoy(rng: random.Random, client_number: int) -> str:
    """A number that is not the invoice's: client number, phone, order, date."""
    return rng.choice(DECOYS).format(
        c=client_number,
        p=rng.randrange(10_000_000, 99_999_999),
        o=rng.randrange(1000, 99999),
        d=f"{rng.randrange(1, 28):02d}.{rng.randrange(1, 12):02d}.2026",
    )


def mangle(rng: random.Random, number: str) -> tuple[str, str]:
    """The number as the payer or bank rewrote it: (kind, text)."""
    roll = rng.random()
    if roll < 0.25:
        return "separators_dropped", "".join(c for c in number if c.isalnum())
    if roll < 0.45:
        swap = {"/": "-", "-": " ", ".": "/"}
        return "separators_changed", "".join(swap.get(c, c) for c in number)
    if roll < 0.65:
        return "lower_case", number.lower()
    if roll < 0.85:
        digits = "".join(c for c in number if c.isdigit())
        return "digits_only", digits.lstrip("0") if rng.random() < 0.5 else digits
    return "glued", rng.choice(("FV", "NR", "REF", "INV", "No")) + number


def reference(rng: random.Random, language: str, numbers: list[str], client_number: int) -> str:
    """A remittance text naming invoice numbers, in the payer's language with bank noise."""
    words = rng.choice(NOISE_WORDS[language])
    joined = rng.choice((", ", " ", "+", " / ", " i ", " y "))
    body = f"{words} {joined.join(numbers)}"
    if rng.random() < 0.3:
        body = (
            f"{body} {decoy(rng, client_number)}"
            if rng.random() < 0.5
            else (f"{decoy(rng, client_number)} {body}")
        )
    return rng.choice(BANK_PREFIX) + body
