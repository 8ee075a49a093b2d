"""The report's canonical form: a streamed digest, the signature, cells that round-trip through
CSV text and XLSX numbers exactly, and a manifest that refuses any edit."""

from __future__ import annotations

import hashlib
import json

import pytest

from recon.errors import ConfigError
from recon.reports.canonical import PREAMBLE, ContentDigest, SigningKey, end_line, start_line
from recon.reports.cells import CellError, parse_number, parse_text, render_text
from recon.reports.csv_zip import parse_row, render_row
from recon.reports.manifest import Manifest, ManifestError, SectionEntry
from recon.reports.model import Column, Kind, Row, fixed, stamp, text

COLUMNS = (Column("payer"), Column("amount", Kind.AMOUNT, "currency"), Column("currency"),
           Column("n", Kind.INT), Column("on", Kind.DATE))  # fmt: skip
ROWS: list[Row] = [("Alice", 1250, "EUR", 3, "2026-10-01"), ("'=X()", -5, "JPY", None, None)]


def test_the_digest_is_sha256_of_the_canonical_lines_computed_as_rows_stream() -> None:
    digest = ContentDigest()
    assert list(digest.section(fixed("s", "S", COLUMNS, ROWS))) == ROWS
    lines = [PREAMBLE, start_line("s", "S", COLUMNS)]
    lines += [(json.dumps(list(r), separators=(",", ":")) + "\n").encode() for r in ROWS]
    lines.append(end_line("s", 2))
    assert digest.digest == hashlib.sha256(b"".join(lines)).hexdigest()
    assert digest.sections[0].sha256 == hashlib.sha256(b"".join(lines[1:])).hexdigest()
    assert digest.sections[0].rows == 2


def test_any_changed_cell_or_title_changes_the_digest() -> None:
    def of(rows: list[Row], title: str = "S") -> str:
        digest = ContentDigest()
        list(digest.section(fixed("s", title, COLUMNS, rows)))
        return digest.digest

    base = of(ROWS)
    assert of([(*ROWS[0][:1], 1251, *ROWS[0][2:]), ROWS[1]]) != base
    assert of(ROWS[:1]) != base
    assert of(ROWS, "T") != base


def test_text_cells_are_formula_safe_and_times_are_utc_seconds() -> None:
    assert text('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    assert text(None) == "" and text("ok") == "ok"
    import datetime as dt

    assert stamp(dt.datetime(2026, 10, 1, 12, 0, 0, 999)) == "2026-10-01T12:00:00Z"


def test_the_signature_needs_the_key_and_short_keys_are_refused() -> None:
    key, other = SigningKey.from_secret("k" * 32), SigningKey.from_secret("l" * 32)
    signature = key.sign("ab" * 32)
    assert key.verifies("ab" * 32, signature)
    assert not other.verifies("ab" * 32, signature) and key.key_id != other.key_id
    assert not key.verifies("ac" * 32, signature)
    assert "k" * 32 not in repr(key)
    with pytest.raises(ConfigError, match="too short"):
        SigningKey.from_secret("short")


def test_rows_round_trip_through_csv_text_exactly() -> None:
    for row in ROWS:
        cells = render_row(COLUMNS, row)
        assert parse_row(COLUMNS, cells) == row
    assert render_row(COLUMNS, ROWS[0])[1] == "12.50"
    assert render_row(COLUMNS, ROWS[1])[1] == "-5"


@pytest.mark.parametrize("bad", ["12.5", "12.500", "1e3", "12,50", "012.50", " 12.50"])
def test_an_amount_not_written_as_the_report_writes_it_is_refused(bad: str) -> None:
    with pytest.raises(CellError):
        parse_text(COLUMNS[1], bad, "EUR")
    assert render_text(COLUMNS[1], 1250, "EUR") == "12.50"


def test_xlsx_numbers_read_back_to_exact_minor_units() -> None:
    amount = COLUMNS[1]
    assert parse_number(amount, 12.5, "EUR") == 1250
    assert parse_number(amount, 12345678901.99, "EUR") == 1234567890199
    assert parse_number(amount, -0.1, "EUR") == -10
    with pytest.raises(CellError):
        parse_number(amount, 12.505, "EUR")
    with pytest.raises(CellError):
        parse_number(amount, "12.50", "EUR")


def test_the_manifest_refuses_any_edit_of_its_text() -> None:
    entry = SectionEntry("s", "S", COLUMNS, 2, "0" * 64, ("01_s.csv",), ("1" * 64,))
    manifest = Manifest("csv", "a" * 64, "b" * 64, "c" * 16, (entry,))
    text_form = manifest.to_json()
    assert Manifest.from_json(text_form) == manifest
    for edited in (text_form + " ", text_form.replace('"rows": 2', '"rows": 3', 1).replace(
            "3,", "2,"), text_form.replace("csv", "pdf", 1)):  # fmt: skip
        if edited == text_form:
            continue
        try:
            parsed = Manifest.from_json(edited)
        except ManifestError:
            continue
        assert parsed != manifest
