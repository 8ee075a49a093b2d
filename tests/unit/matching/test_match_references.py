"""Invoice numbers in references of every style; decoys are not taken for invoice numbers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.matching.references import (
    BARE,
    FORMATTED,
    LABELLED,
    extract_numbers,
    format_patterns,
    invoice_keys,
    is_cut_prefix,
    join_keys,
    one_edit_apart,
)

FORMAT = "INV-{YEAR}-{NUMBER}"


def numbers(reference: str, number_format: str = FORMAT) -> dict[int, int]:
    """{number: kind} found in one reference."""
    found = extract_numbers(pa.array([reference]), number_format)
    return dict(zip(found.value.tolist(), found.kind.tolist(), strict=True))


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("INV-2026-10234", {10234: FORMATTED}),
        ("INV202610234", {10234: FORMATTED, 202610234: LABELLED}),
        ("2026-10234", {10234: FORMATTED}),
        ("Invoice #10234", {10234: LABELLED}),
        ("inv10234", {10234: LABELLED}),
        ("Rechnung 10234 Kd-Nr 4512", {10234: LABELLED}),
        ("Rechnungsnr. 10234", {10234: LABELLED}),
        ("Rg.-Nr. 10234", {10234: LABELLED}),
        ("Facture no 10234", {10234: LABELLED}),
        ("Facture n° 10234", {10234: LABELLED}),
        ("Factuur 10234", {10234: LABELLED}),
        ("Fattura n. 10234", {10234: LABELLED}),
        ("Faktura nr 10234", {10234: LABELLED}),
        ("SVWZ+INV-2026-10234 EREF+NOTPROVIDED", {10234: FORMATTED}),
        ("SEPA-UEBERWEISUNG 10234 /ROC/NOTPROVIDED", {10234: BARE}),
        ("Invoices 10234, 10235 & 10236", {10234: LABELLED, 10235: LABELLED, 10236: LABELLED}),
        ("RE 10234+10235", {10234: LABELLED, 10235: LABELLED}),
        ("Rechnungen 10234 und 10235", {10234: LABELLED, 10235: LABELLED}),
        ("10234 10235", {10234: BARE, 10235: BARE}),
        ("Acme GmbH - Invoice #10234", {10234: LABELLED}),
    ],
)
def test_reference_styles(reference: str, expected: dict[int, int]) -> None:
    assert numbers(reference) == expected


@pytest.mark.parametrize(
    "reference",
    [
        "Kd-Nr 4512 Rechnung 10234",  # client number
        "Kundennr. 4512 Rechnungsnr. 10234",
        "Customer ID: 4512 Invoice 10234",
        "Order 552177 inv 10234",  # order number
        "Rechnung 10234 vom 15.03.2026",  # dates in every form
        "Rechnung 10234 2026-03-15",
        "Rechnung 10234 20260315",
        "Rechnung 10234 15 MAR 2026",
        "Tel +49 30 1234567 RE 10234",  # phone numbers
        "RE 10234 0171-1234567",
        "EUR 19.99 INV 10234",  # amounts
        "INV 10234 1.234,56 EUR",
        "DE89370400440532013000 10234",  # IBAN
        "ch_3NxAbCdEf12345678 10234",  # provider ids
        "Payment 2026 10234",  # a year
    ],
)
def test_decoys_are_not_invoice_numbers(reference: str) -> None:
    assert set(numbers(reference)) == {10234}


def test_cut_references_flag_the_last_number() -> None:
    found = extract_numbers(
        pa.array(["Zahlung Rechnung 1", "Zahlung Rechnung 1 ", "Invoice 10234 thanks"]), FORMAT
    )
    cut = dict(zip(found.row.tolist(), found.cut.tolist(), strict=True))
    assert cut == {0: True, 1: False, 2: False}


def test_bare_numbers_need_four_digits_unless_labelled() -> None:
    assert numbers("paid 523") == {}
    assert numbers("Invoice 523") == {523: LABELLED}


def test_format_patterns() -> None:
    assert format_patterns("{NUMBER}") == []
    assert format_patterns("{YEAR}{NUMBER}") == []
    # full form, glued to letters after it, glued digits, and the form without the letters
    assert len(format_patterns("INV-{YEAR}-{NUMBER}")) == 4
    assert numbers("RE-00042", "RE-{NUMBER}") == {42: FORMATTED}


def test_numbers_glued_to_letters_and_two_digit_years() -> None:
    assert numbers("FVABC00042", "ABC{NUMBER}") == {42: FORMATTED}
    assert numbers("ABC00042REF", "ABC{NUMBER}") == {42: FORMATTED}
    assert numbers("Faktura R26 0042", "R{YY}-{NUMBER}")[42] == FORMATTED
    assert numbers("pago 00042 DE", "{NUMBER}-DE") == {42: FORMATTED}


@pytest.mark.parametrize(
    "reference", ["NoF2026003191", "REFF2026003191", "Odeme INVF2026003191", "FVF2026003191x"]
)
def test_one_letter_prefix_with_a_year_is_read_glued_to_letters(reference: str) -> None:
    """`F{YEAR}{NUMBER}`: a token holding the full number after other letters is a reading."""
    assert numbers(reference, "F{YEAR}{NUMBER}") == {3191: FORMATTED}


def test_one_letter_prefix_alone_is_not_read_glued_to_letters() -> None:
    # `F{NUMBER}` is too loose: `XF12345` may be any code, so it stays unread
    assert numbers("XF12345", "F{NUMBER}") == {}
    assert numbers("F12345", "F{NUMBER}") == {12345: FORMATTED}
    # the year must be there: letters, F and a bare number are not the tenant's full number
    assert numbers("NOF3191", "F{YEAR}{NUMBER}") == {}


def test_invoice_keys_and_join() -> None:
    keys = invoice_keys(
        np.array([10234, 10235, 10236]),
        pa.array(["INV-2026-5234", "", "legacy/77"]),
        FORMAT,
    )
    found = extract_numbers(pa.array(["INV-2026-5234", "10235", "5234", "77 0077"]), FORMAT)
    which, invoice = join_keys(found, keys)
    pairs = set(zip(found.row[which].tolist(), invoice.tolist(), strict=True))
    # formatted numbers name invoice numbers only; bare ones name ids and numbers
    assert pairs == {(0, 0), (1, 1), (2, 0)}


def test_one_edit_apart() -> None:
    a = np.array([10234, 10234, 10234, 10234, 10234, 10234])
    b = np.array([10235, 10243, 10324, 10234, 11235, 102340])
    assert one_edit_apart(a, b).tolist() == [True, True, True, False, False, False]


@settings(max_examples=200, deadline=None)
@given(st.integers(1000, 10**9), st.data())
def test_one_edit_apart_finds_every_single_typo(value: int, data: st.DataObject) -> None:
    digits = list(str(value))
    k = data.draw(st.integers(0, len(digits) - 1))
    swappable = k + 1 < len(digits) and digits[k] != digits[k + 1]
    if swappable and not (k == 0 and digits[1] == "0") and data.draw(st.booleans()):
        digits[k], digits[k + 1] = digits[k + 1], digits[k]
    else:
        choices = [d for d in "0123456789" if d != digits[k] and not (k == 0 and d == "0")]
        digits[k] = data.draw(st.sampled_from(choices))
    typo = int("".join(digits))
    assert one_edit_apart(np.array([value]), np.array([typo])).tolist() == [True]


def test_is_cut_prefix() -> None:
    piece = np.array([1023, 1023, 1023, 1023])
    key = np.array([10234, 102345, 10334, 1023])
    assert is_cut_prefix(piece, key).tolist() == [True, True, False, True]
