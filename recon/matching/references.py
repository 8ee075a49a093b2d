"""Invoice numbers in payment references, and the keys of the invoices they may name.

A reference is rewritten by a fixed sequence of regular expressions (RE2, through Arrow: about a
second for a million references): provider ids, dates, amounts, phone numbers and
client or order numbers are blanked first; numbers written the tenant's way (`INV-2026-10234`) or
after an invoice word (`Rechnung`, `Facture no`, `#`) are marked; what is left are bare numbers.
Nothing here decides: it says which numbers a reference holds and how strongly each is marked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from recon.matching.vec import KeyIndex, lexsort

I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
Bools = npt.NDArray[np.bool_]

BARE: int = 0
LABELLED: int = 1
FORMATTED: int = 2

ID_KEY: int = 0
NUM_KEY: int = 1
GLUED_KEY: int = 2  # all the digits of an invoice_num in one run

_LABEL = "§"
_FORMAT = "¶"
_MAX_DIGITS = 12
_POW10 = np.array([10**k for k in range(_MAX_DIGITS + 1)], dtype=np.int64)

_PROVIDER_IDS = r"\b[A-Z]{2,4}_[A-Z0-9]{4,}\b"
_CLIENT_WORDS = (
    "KUNDENNUMMER|KUNDENNR|KUNDEN|KUNDE|KDNR|KD|CUSTOMER|CUST|CLIENTE|CLIENT|KLANTNUMMER|KLANTNR|"
    "KLANT|MITGLIED|MEMBER|ACCOUNT|ACCT|KONTO|CONTRACT|VERTRAG|ORDER|BESTELLUNG|AUFTRAG|COMMANDE|"
    "BESTELLING|PEDIDO|ORDINE|DOMAIN|TICKET|SERVICE|USTID|UST|VAT|TAX|BLZ|SORT|ABONNEMENT|ABO"
)
_SUB_LABEL = r"(?:NUMMER|NUMBER|NUMERO|NUM|NR|NO|N|ID)"
_CLIENT_NUMBERS = rf"\b(?:{_CLIENT_WORDS})\W{{0,3}}(?:{_SUB_LABEL}\b\.?\W{{0,3}})?\d+\b"
_DATES = (
    r"\b\d{4}-\d{1,2}-\d{1,2}\b",
    r"\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b",
    r"\b\d{1,2}\.?\s?(?:JAN|FEB|MAR|MRZ|APR|MAY|MAI|JUN|JUL|AUG|SEP|OCT|OKT|NOV|DEC|DEZ)[A-Z]*\.?\s?(?:\d{4}|\d{2})?\b",
    r"\b(?:JAN|FEB|MAR|MRZ|APR|MAY|MAI|JUN|JUL|AUG|SEP|OCT|OKT|NOV|DEC|DEZ)[A-Z]*\.?\s?\d{2,4}\b",
)
_DATE_DIGITS = (
    r"\b(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b",
    r"\b(?:0[1-9]|[12]\d|3[01])(?:0[1-9]|1[0-2])(?:19|20)\d\d\b",
)
_AMOUNTS = (
    r"(?:\b(?:EUR|USD|GBP|CHF|SEK|NOK|DKK|PLN|CZK)|[€$£])\s?\d+(?:[.,']\d{3})*(?:[.,]\d{1,2})?\b",
    r"\b\d+(?:[.,']\d{3})*[.,]\d{1,2}\s?(?:(?:EUR|USD|GBP|CHF|SEK|NOK|DKK|PLN|CZK)\b|[€$£])",
    r"\b\d{1,3}(?:[.,' ]\d{3})*[.,]\d{2}\b",
    r"\b\d+[.,]\d{2}\b",
)
_PHONES = (
    r"\b(?:TELEFON|TEL|PHONE|FON|MOBILE|MOBIL|MOB|HANDY|GSM|FAX)\W{0,3}[\d ()/+.-]{6,}",
    r"(?:\+|\b00)\d{1,3}[ ./-](?:\(0\)[ ./-]?)?\d{1,5}(?:[ ./-]?\d{2,}){1,4}",
    r"(?:\+|\b00)\d{9,15}\b",
    r"\b0\d{2,5}[ /-]\d{3,}(?:[ -]\d{2,3}\b)*",
)
_INVOICE_WORDS = (
    "INVOICES|INVOICE|INV|RECHNUNGSNUMMER|RECHNUNGSNR|RECHNUNGEN|RECHNUNG|RECHN|RGNR|RG|RE|"
    "FACTURES|FACTURE|FACTUURNUMMER|FACTUURNR|FACTUREN|FACTUUR|FACTURAS|FACTURA|FACT|FATTURE|"
    "FATTURA|FAKTURY|FAKTURA|NOTA|BILL|BELEG|REFERENCE|REF|NUMMER|NUMBER|NUMERO|NUM|NR|NO"
)
_LABELLED = (
    rf"(?:\b(?:{_INVOICE_WORDS})|#)[^\w§¶]{{0,4}}(?:{_SUB_LABEL}\b\.?\W{{0,3}})?#?0*(\d{{1,12}})\b"
)
_LIST_SEP = r"\s*(?:[,;&+/]|\bAND\b|\bUND\b|\bET\b|\bEN\b|\bY\b|\bE\b)\s*"
# a marked number followed by up to three more, listed with commas, "&", "und", ...: the listed
# ones are marked as labelled too (an unmatched group leaves an empty mark, which is dropped)
_CHAIN = (
    rf"([§¶]\d+[§¶]){_LIST_SEP}0*(\d{{3,12}})\b"
    rf"(?:{_LIST_SEP}0*(\d{{3,12}})\b)?(?:{_LIST_SEP}0*(\d{{3,12}})\b)?"
)
_MIXED = (
    r"\b[A-Z0-9]*[A-Z][A-Z0-9]*\d[A-Z0-9]*\b",
    r"\b[A-Z0-9]*\d[A-Z0-9]*[A-Z][A-Z0-9]*\b",
)
_PIECES = r"[^0-9§¶]+"
_YEAR_LIKE = (1990, 2039)


@dataclass(frozen=True)
class RefNumbers:
    """Numbers found in references: one row per (payment row, number)."""

    row: I64
    value: I64
    kind: I8
    digits: I8
    cut: Bools
    # the number ends the reference: it may have been cut at any length
    at_end: Bools | None = None

    def __len__(self) -> int:
        return len(self.row)

    def take(self, mask: Bools | npt.NDArray[np.intp]) -> RefNumbers:
        """The rows selected by a mask or positions."""
        return RefNumbers(
            self.row[mask],
            self.value[mask],
            self.kind[mask],
            self.digits[mask],
            self.cut[mask],
            None if self.at_end is None else self.at_end[mask],
        )

    @property
    def ends(self) -> Bools:
        """`at_end`, or `cut` when it was not computed."""
        return self.cut if self.at_end is None else self.at_end


@dataclass(frozen=True)
class InvoiceKeys:
    """Invoice ids and invoice numbers as searchable integer keys, sorted by value."""

    value: I64
    invoice: I64
    kind: I8
    index: KeyIndex


def _format_parts(number_format: str) -> list[str]:
    return [part for part in re.split(r"(\{[A-Z]+\})", number_format.upper()) if part]


_FIELD_PATTERNS = {
    "{YEAR}": r"(?:19|20)\d\d",
    "{MONTH}": r"(?:0?[1-9]|1[0-2])",
    "{DAY}": r"(?:0?[1-9]|[12]\d|3[01])",
    "{YY}": r"\d\d",
    "{NUMBER}": r"0*(\d{1,12})",
}


def _literal(part: str) -> str:
    """A literal part of the format; its separators may be written differently or left out."""
    return "".join(re.escape(c) if c.isalnum() else r"\W{0,2}" for c in part)


def _formats(number_format: str | Sequence[str]) -> tuple[str, ...]:
    return (number_format,) if isinstance(number_format, str) else tuple(number_format)


def format_patterns(number_format: str) -> list[tuple[str, str]]:
    """RE2 (pattern, replacement) pairs that mark numbers written the tenant's way.

    `INV-{YEAR}-{NUMBER}` gives: the full form with separators (`INV-2026-10234` → ¶10234¶); the
    glued form (`INV202610234`), which could also be invoice 202610234, so both are kept
    (§202610234§ ¶10234¶); and the form without the letters but with separators (`2026-10234`).
    A bare `{NUMBER}` gives nothing: it is found as an ordinary number.
    """
    parts = _format_parts(number_format)
    first_field = next((k for k, p in enumerate(parts) if p in _FIELD_PATTERNS), 0)
    prefix = "".join(_literal(p) for p in parts[:first_field])
    has_letters = any(c.isalpha() for p in parts if p not in _FIELD_PATTERNS for c in p)
    if parts == ["{NUMBER}"]:
        return []

    def fields(glued: bool, min_digits: int) -> str:
        out = []
        for part in parts[first_field:]:
            if part == "{NUMBER}":
                out.append(rf"0*(\d{{{min_digits},12}})")
            elif part in _FIELD_PATTERNS:
                out.append(_FIELD_PATTERNS[part])
            elif any(c.isalnum() for c in part):
                out.append(_literal(part))
            else:
                out.append("" if glued else r"\W{1,2}")
        return "".join(out)

    separated, glued = fields(glued=False, min_digits=1), fields(glued=True, min_digits=1)
    # letters before the number are specific enough to be found glued to other letters
    # (`FVABC12345`, `NRINV-2026-00042`); so is one letter followed by a year or another field
    # besides the number (`NOF2026003191` for `F{YEAR}{NUMBER}`), but not `F{NUMBER}` (`REF123`)
    letters = "".join(parts[:first_field])
    specific = bool(re.match(r"[A-Z]{2}", letters)) or (
        letters[:1].isalpha() and any(p in _FIELD_PATTERNS and p != "{NUMBER}" for p in parts)
    )
    lead = "" if specific else r"\b"
    patterns: list[tuple[str, str]] = []
    if has_letters or separated != glued:
        patterns.append((rf"{lead}{prefix}{separated}\b", f" {_FORMAT}\\1{_FORMAT} "))
    if has_letters and prefix and parts[-1] == "{NUMBER}":
        # the number glued to letters after it (`ABC12345REF`)
        patterns.append((rf"{lead}{prefix}{separated}([A-Z])", f" {_FORMAT}\\1{_FORMAT} \\2"))
    if prefix and glued != separated:
        # group 1: the whole digit run, group 2: the {NUMBER} inside it
        patterns.append(
            (rf"{lead}{prefix}({glued})\b", f" {_LABEL}\\1{_LABEL} {_FORMAT}\\2{_FORMAT} ")
        )
    if prefix and first_field < len(parts) and parts[first_field] not in ("{NUMBER}", "{YY}"):
        patterns.append((rf"\b{fields(glued=False, min_digits=3)}\b", f" {_FORMAT}\\1{_FORMAT} "))
    return patterns


def invoice_number_pattern(number_format: str) -> str:
    """An RE2 pattern (on upper-case text) whose group `n` is the {NUMBER} of an invoice_num."""
    parts = _format_parts(number_format)
    body = "".join(
        r"0*(?P<n>\d{1,12})" if p == "{NUMBER}" else _FIELD_PATTERNS.get(p, _literal(p))
        for p in parts
    )
    return r"^\W*" + body + r"\W*$"


def _replace(text: pa.Array, pattern: str, replacement: str = " ") -> pa.Array:
    return pc.replace_substring_regex(text, pattern=pattern, replacement=replacement)


def _alternation(patterns: list[str]) -> str:
    return "|".join(f"(?:{pattern})" for pattern in patterns)


def _replace_where(text: pa.Array, pattern: str, replacement: str = " ") -> pa.Array:
    # Replacing is far slower than matching (it needs submatches), so match first and rewrite
    # only the rows that hold something to rewrite.
    hit = pc.match_substring_regex(text, pattern)
    if not pc.any(hit).as_py():
        return text
    some = _replace(pc.filter(text, hit), pattern, replacement)
    return pc.replace_with_mask(text, hit, some)


def normalise_reference(
    references: pd.Series | pa.Array, number_format: str | Sequence[str]
) -> pa.Array:
    """Rewrite references so invoice numbers are marked (¶ formatted, § labelled) and decoys gone.

    Order matters: dates and provider ids go before formatted numbers are marked; client, order
    and phone numbers and amounts go before invoice words mark the number that follows them.
    Each step is one alternation, leftmost-first: the earliest pattern that matches wins.
    """
    text = pc.utf8_upper(pc.utf8_normalize(_as_array(references), form="NFKC"))
    pad = pa.scalar(" ", pa.large_string())
    text = pc.binary_join_element_wise(pad, text, pad, pa.scalar("", pa.large_string()))
    text = _replace_where(text, _alternation([_PROVIDER_IDS, *_DATES, *_DATE_DIGITS]))
    for one_format in _formats(number_format):
        for pattern, replacement in format_patterns(one_format):
            text = _replace_where(text, pattern, replacement)
    text = _replace_where(text, _alternation([*_AMOUNTS, *_PHONES, _CLIENT_NUMBERS]))
    text = _replace_where(text, _LABELLED, rf" {_LABEL}\1{_LABEL} ")
    text = _replace_where(
        text, _CHAIN, rf"\1 {_LABEL}\2{_LABEL} {_LABEL}\3{_LABEL} {_LABEL}\4{_LABEL} "
    )
    return _replace_where(text, _alternation(list(_MIXED)))


def _as_array(values: pd.Series | pa.Array) -> pa.Array:
    array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return pc.cast(array, pa.large_string()).fill_null("")


def digit_count(values: I64) -> I8:
    """Number of decimal digits of non-negative integers (0 has one)."""
    return np.maximum(np.searchsorted(_POW10, values, side="right"), 1).astype(np.int8)


_CHUNK_ROWS = 200_000


def extract_numbers(
    references: pd.Series | pa.Array,
    number_format: str | Sequence[str],
    cut_lengths: tuple[int, ...] = (18,),
    min_bare_digits: int = 4,
) -> RefNumbers:
    """Every candidate invoice number in each reference, with how it was written.

    Large inputs are cut into chunks worked on by a few threads (Arrow kernels release the GIL).
    """
    raw = _as_array(references)
    n = len(raw)
    bounds = list(range(0, n, _CHUNK_ROWS)) or [0]
    workers = min(len(bounds), os.cpu_count() or 1)

    def work(start: int) -> RefNumbers:
        chunk = raw.slice(start, _CHUNK_ROWS)
        found = _numbers_in(chunk, number_format, cut_lengths, min_bare_digits)
        return RefNumbers(
            found.row + start, found.value, found.kind, found.digits, found.cut, found.ends
        )

    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(work, bounds))
    else:
        parts = [work(start) for start in bounds]
    return RefNumbers(
        np.concatenate([p.row for p in parts]),
        np.concatenate([p.value for p in parts]),
        np.concatenate([p.kind for p in parts]),
        np.concatenate([p.digits for p in parts]),
        np.concatenate([p.cut for p in parts]),
        np.concatenate([p.ends for p in parts]),
    )


def _numbers_in(
    raw: pa.Array,
    number_format: str | Sequence[str],
    cut_lengths: tuple[int, ...],
    min_bare_digits: int,
) -> RefNumbers:
    text = normalise_reference(raw, number_format)
    pieces = pc.split_pattern_regex(text, pattern=_PIECES)
    flat = pc.list_flatten(pieces)
    parent = pc.list_parent_indices(pieces).to_numpy().astype(np.int64)
    lengths = pc.list_value_length(pieces).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(lengths) else lengths
    digits_only = pc.replace_substring(pc.replace_substring(flat, _LABEL, ""), _FORMAT, "")
    valid = pc.match_substring_regex(digits_only, r"^\d{1,15}$").to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(valid)
    marks = flat.take(pa.array(rows))
    value = pc.cast(digits_only.take(pa.array(rows)), pa.int64()).to_numpy().astype(np.int64)
    kind = np.where(
        pc.starts_with(marks, _FORMAT).to_numpy(zero_copy_only=False),
        FORMATTED,
        np.where(pc.starts_with(marks, _LABEL).to_numpy(zero_copy_only=False), LABELLED, BARE),
    ).astype(np.int8)
    row = parent[rows]
    # a number touching the end of a reference that has a cut length may itself be cut short
    ref_len = pc.utf8_length(raw).to_numpy(zero_copy_only=False).astype(np.int64)
    ends_digit = pc.match_substring_regex(raw, r"\d$").to_numpy(zero_copy_only=False)
    last_piece = starts[row] + lengths[row] - 1
    is_last = _is_last_number(rows, last_piece, valid)
    at_end = ends_digit[row] & is_last
    cut = np.isin(ref_len[row], np.array(cut_lengths, dtype=np.int64)) & at_end
    digits = digit_count(value)
    keep = value > 0
    keep &= (kind != BARE) | (digits >= min_bare_digits)
    year_like = (kind == BARE) & (value >= _YEAR_LIKE[0]) & (value <= _YEAR_LIKE[1])
    keep &= ~year_like
    found = RefNumbers(row, value, kind, digits, cut, at_end).take(keep)
    return _dedupe(found)


def _is_last_number(position: I64, last_piece: I64, valid: Bools) -> Bools:
    # the last valid piece of its row: no valid piece after it up to the row's last piece
    valid_count = np.cumsum(valid)
    return np.asarray(valid_count[last_piece] == valid_count[position], dtype=np.bool_)


def _dedupe(found: RefNumbers) -> RefNumbers:
    if not len(found):
        return found
    # one row per (payment, value): the strongest marking, cut only if every copy is cut
    order = lexsort((-found.kind, found.value, found.row))
    f = found.take(order)
    first = np.ones(len(f), dtype=bool)
    first[1:] = (f.row[1:] != f.row[:-1]) | (f.value[1:] != f.value[:-1])
    group = np.cumsum(first) - 1
    all_cut = np.ones(int(group[-1]) + 1, dtype=bool)
    np.logical_and.at(all_cut, group, f.cut)
    all_end = np.ones(int(group[-1]) + 1, dtype=bool)
    np.logical_and.at(all_end, group, f.ends)
    kept = f.take(first)
    return RefNumbers(kept.row, kept.value, kept.kind, kept.digits, all_cut, all_end)


def invoice_keys(
    invoice_ids: I64, invoice_nums: pa.Array, number_format: str | Sequence[str]
) -> InvoiceKeys:
    """Keys of each invoice: its id, the {NUMBER} of its invoice_num, and all its digits.

    The first of the formats the invoice_num is written in gives the {NUMBER}; an invoice_num in
    none of them gives its last run of digits. All the digits of an invoice_num in one run
    (`INV-2026-00042` → 202600042) are a key too: a bank or payer may drop the separators.
    """
    n = len(invoice_ids)
    nums = pc.utf8_upper(_as_array(invoice_nums))
    formatted = pa.nulls(n, type=pa.large_string())
    for one_format in _formats(number_format):
        if one_format == "{NUMBER}":
            continue
        missing = pc.is_null(formatted)
        if not pc.any(missing).as_py():
            break
        found = pc.struct_field(
            pc.extract_regex(pc.filter(nums, missing), invoice_number_pattern(one_format)), "n"
        )
        formatted = pc.replace_with_mask(formatted, missing, found)
    other = pc.and_(pc.is_null(formatted), pc.not_equal(nums, ""))
    if pc.any(other).as_py():
        last = pc.extract_regex(pc.filter(nums, other), r"(?P<n>\d{1,12})\D*$")
        formatted = pc.replace_with_mask(formatted, other, pc.struct_field(last, "n"))
    number = pc.coalesce(formatted, pa.scalar("0", pa.large_string()))
    num_value = pc.cast(number, pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)
    all_digits = pc.replace_substring_regex(nums, pattern=r"\D+", replacement="")
    short = pc.less_equal(pc.utf8_length(all_digits), 15)
    all_digits = pc.if_else(
        pc.and_(short, pc.not_equal(all_digits, "")), all_digits, pa.scalar("0", pa.large_string())
    )
    glued_value = pc.cast(all_digits, pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)
    has_num = num_value > 0
    has_glued = (glued_value > 0) & (glued_value != num_value)
    value = np.concatenate(
        [invoice_ids.astype(np.int64), num_value[has_num], glued_value[has_glued]]
    )
    invoice = np.concatenate(
        [np.arange(n, dtype=np.int64), np.flatnonzero(has_num), np.flatnonzero(has_glued)]
    )
    kind = np.concatenate(
        [
            np.full(n, ID_KEY, dtype=np.int8),
            np.full(int(has_num.sum()), NUM_KEY, dtype=np.int8),
            np.full(int(has_glued.sum()), GLUED_KEY, dtype=np.int8),
        ]
    )
    order = lexsort((kind, invoice, value))
    value = value[order]
    return InvoiceKeys(value, invoice[order], kind[order], KeyIndex.build(value))


def join_keys(found: RefNumbers, keys: InvoiceKeys) -> tuple[I64, I64]:
    """(position in `found`, invoice) for every number equal to an invoice key.

    Formatted numbers only name invoice numbers; other numbers may name ids or numbers.
    """
    which, slot = keys.index.lookup(found.value)
    invoice = keys.invoice[slot]
    ok = (found.kind[which] != FORMATTED) | (keys.kind[slot] != ID_KEY)
    return which[ok], invoice[ok]


def _digit_matrix(values: I64, width: int) -> npt.NDArray[np.int64]:
    return (values[:, None] // _POW10[None, :width]) % 10


def one_edit_apart(a: I64, b: I64) -> Bools:
    """True where two numbers of the same length differ by one digit or one adjacent swap."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    out = np.zeros(len(a), dtype=bool)
    rows = np.flatnonzero((digit_count(a) == digit_count(b)) & (a != b) & (a >= 0) & (b >= 0))
    if not len(rows):
        return out
    a, b = a[rows], b[rows]
    width = int(digit_count(np.array([max(int(a.max()), int(b.max()))]))[0])
    da = _digit_matrix(a, width)
    db = _digit_matrix(b, width)
    differ = da != db
    count = differ.sum(axis=1)
    first = np.argmax(differ, axis=1)
    nxt = np.minimum(first + 1, width - 1)
    idx = np.arange(len(a))
    swapped = (
        (count == 2)
        & differ[idx, nxt]
        & (da[idx, first] == db[idx, nxt])
        & (da[idx, nxt] == db[idx, first])
    )
    out[rows] = (count == 1) | swapped
    return out


def is_cut_prefix(piece: I64, key: I64, max_missing: int = 3) -> Bools:
    """True where `piece` is `key` with 0..max_missing trailing digits cut off."""
    missing = digit_count(key).astype(np.int64) - digit_count(piece).astype(np.int64)
    ok = (missing >= 0) & (missing <= max_missing)
    scale = _POW10[np.clip(missing, 0, _MAX_DIGITS)]
    return np.asarray(ok & (key // scale == piece), dtype=np.bool_)


def provider_ids(references: pd.Series | pa.Array) -> tuple[I64, pa.Array]:
    """Ids of other systems quoted in references (`ch_3Nx...`, `PM01AB...`), case kept."""
    raw = _as_array(references)
    # only references that may hold such an id are split
    maybe = np.flatnonzero(
        pc.match_substring_regex(raw, r"[A-Za-z]{2,4}_|[A-Za-z0-9]{8}").to_numpy(
            zero_copy_only=False
        )
    )
    raw = raw.take(pa.array(maybe))
    pieces = pc.split_pattern_regex(raw, pattern=r"[\s,;:()\[\]/|#=+]+")
    flat = pc.list_flatten(pieces)
    parent = pc.list_parent_indices(pieces).to_numpy().astype(np.int64)
    # a prefixed id (ch_..., pi_..., po_...) of any length, or a long code mixing letters and digits
    prefixed = pc.match_substring_regex(flat, r"^[A-Za-z]{2,4}_[A-Za-z0-9]{3,}$")
    long_enough = pc.greater_equal(pc.utf8_length(flat), 8)
    has_digit = pc.match_substring_regex(flat, r"\d")
    has_letter = pc.match_substring_regex(flat, r"[A-Za-z]")
    mixed = pc.and_(pc.and_(long_enough, has_digit), has_letter)
    ok = pc.or_(prefixed, mixed).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(ok)
    return maybe[parent[rows]], flat.take(pa.array(rows))
