"""The report as an XLSX workbook: a "contents" sheet, a sheet per section (frozen header row,
column widths, amounts as numbers with a currency format, dates as dates, text formula-safe),
and a "manifest" sheet. A section longer than Excel's 1,048,575 data rows continues on more
sheets (`allocations (2)`, ...), which the contents sheet says.

openpyxl's write-only mode streams rows to disk, so memory stays bounded as rows stream in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from recon.money import minor_exponent
from recon.reports.canonical import ContentDigest, SigningKey
from recon.reports.cells import (
    CellError,
    amount_decimal,
    currencies,
    parse_day,
    parse_number,
)
from recon.reports.manifest import Manifest, SectionEntry
from recon.reports.model import Cell, Column, Kind, Row, Section
from recon.reports.verify import Tampered, check_content, load_manifest

EXCEL_ROWS = 1_048_575
"""Data rows per sheet: Excel's 1,048,576 rows less the header."""
CONTENTS, MANIFEST = "contents", "manifest"
_CHUNK = 30_000  # characters per manifest cell (Excel keeps at most 32,767)
_WIDTHS = {Kind.INT: 10, Kind.AMOUNT: 16, Kind.DATE: 12, Kind.DATETIME: 21}


def sheet_name(section: str, part: int) -> str:
    """The `part`th sheet of a section (1-based)."""
    return section[:31] if part == 1 else f"{section[:24]} ({part})"


def _number_format(currency: str) -> str:
    places = minor_exponent(currency)
    return ("#,##0" + ("." + "0" * places if places else "")) + f' "{currency}"'


def _cells(ws: Any, columns: tuple[Column, ...], row: Row) -> list[Any]:
    money = currencies(columns, row)
    out: list[Any] = []
    for column, value, currency in zip(columns, row, money, strict=True):
        if value is None or column.kind in (Kind.TEXT, Kind.INT, Kind.DATETIME):
            out.append(value)
        elif column.kind is Kind.AMOUNT and isinstance(value, int) and currency:
            cell = WriteOnlyCell(ws, value=amount_decimal(value, currency))
            cell.number_format = _number_format(currency)
            out.append(cell)
        elif column.kind is Kind.DATE and isinstance(value, str):
            cell = WriteOnlyCell(ws, value=dt.date.fromisoformat(value))
            cell.number_format = "yyyy-mm-dd"
            out.append(cell)
        else:
            raise CellError(f"{value!r} cannot be written in column {column.name}")
    return out


def _new_sheet(book: Any, name: str, columns: tuple[Column, ...]) -> Any:
    ws = book.create_sheet(name)
    ws.freeze_panes = "A2"
    for index, column in enumerate(columns, start=1):
        width = _WIDTHS.get(column.kind, min(max(len(column.name) + 4, 14), 40))
        ws.column_dimensions[get_column_letter(index)].width = width
    bold = Font(bold=True)
    header = []
    for column in columns:
        cell = WriteOnlyCell(ws, value=column.name)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    return ws


def _parts_of(count: int, limit: int) -> int:
    return max(1, -(-count // limit))


def contents_rows(manifest: Manifest) -> list[tuple[str, ...]]:
    """The contents sheet: each section, its rows and the sheets it is on."""
    rows: list[tuple[str, ...]] = [("section", "title", "rows", "sheets", "note")]
    for s in manifest.sections:
        note = (
            f"continues on {len(s.parts)} sheets: Excel holds at most {EXCEL_ROWS:,} rows a sheet"
            if len(s.parts) > 1
            else ""
        )
        rows.append((s.name, s.title, str(s.rows), ", ".join(s.parts), note))
    return rows


def manifest_rows(manifest: Manifest) -> list[tuple[str, ...]]:
    """The manifest sheet: digest, signature and key id, then the manifest's JSON in chunks."""
    text = manifest.to_json()
    rows: list[tuple[str, ...]] = [
        ("digest", manifest.digest),
        ("signature", manifest.signature),
        ("key_id", manifest.key_id),
        ("verify", "recon export verify PATH"),
    ]
    rows += [("manifest", text[i : i + _CHUNK]) for i in range(0, len(text), _CHUNK)]
    return rows


def write_xlsx(
    sections: Sequence[Section], path: Path, key: SigningKey, *, rows_per_sheet: int = EXCEL_ROWS
) -> Manifest:
    """Write the workbook to `path`."""
    book = Workbook(write_only=True)
    contents = book.create_sheet(CONTENTS)
    digest = ContentDigest()
    entries = []
    for section in sections:
        parts = []
        rows = digest.section(section)
        for part in range(1, _parts_of(section.count, rows_per_sheet) + 1):
            name = sheet_name(section.name, part)
            parts.append(name)
            ws = _new_sheet(book, name, section.columns)
            for row in islice(rows, rows_per_sheet):
                ws.append(_cells(ws, section.columns, row))
        if next(rows, None) is not None:
            raise ValueError(f"section {section.name} has more rows than it said ({section.count})")
        entries.append(SectionEntry.of(digest.sections[-1], tuple(parts)))
    manifest = Manifest("xlsx", digest.digest, key.sign(digest.digest), key.key_id, tuple(entries))
    for line in contents_rows(manifest):
        contents.append(list(line))
    sheet = book.create_sheet(MANIFEST)
    for line in manifest_rows(manifest):
        sheet.append(list(line))
    book.save(path)
    return manifest


# -- reading back ----------------------------------------------------------------------------------


def _text_rows(ws: Any) -> list[tuple[str, ...]]:
    return [
        tuple("" if v is None else str(v) for v in row) for row in ws.iter_rows(values_only=True)
    ]


def _canonical(column: Column, value: object, currency: str | None) -> Cell:
    if column.kind is Kind.TEXT:
        if value is None or isinstance(value, str):
            return value or ""
        raise CellError(f"{value!r} in column {column.name} is not text")
    if value is None:
        return None
    if column.kind is Kind.INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise CellError(f"{value!r} in column {column.name} is not an integer")
    if column.kind is Kind.AMOUNT:
        return parse_number(column, value, currency)
    if column.kind is Kind.DATE:
        return parse_day(column, value)
    if isinstance(value, str):
        return value
    raise CellError(f"{value!r} in column {column.name} is not a timestamp")


def _row(columns: tuple[Column, ...], values: tuple[object, ...]) -> Row:
    width = len(columns)
    if any(v is not None for v in values[width:]):
        raise CellError("a row has cells beyond the section's columns")
    padded = tuple(values[:width]) + (None,) * (width - len(values[:width]))
    texts: Row = tuple(
        _canonical(c, v, None) if c.kind is Kind.TEXT else None
        for c, v in zip(columns, padded, strict=True)
    )
    money = currencies(columns, texts)
    return tuple(_canonical(c, v, m) for c, v, m in zip(columns, padded, money, strict=True))


def _section_rows(book: Any, entry: SectionEntry) -> Iterator[Row]:
    for name in entry.parts:
        rows = book[name].iter_rows(values_only=True)
        header = tuple(v for v in next(rows, ()) if v is not None)
        if header != tuple(c.name for c in entry.columns):
            raise ValueError(f"the header of sheet {name!r} is not the section's columns")
        for values in rows:
            yield _row(entry.columns, values)


def verify_xlsx(path: Path, key: SigningKey) -> Manifest:
    """Check a workbook written by `write_xlsx`; Tampered naming the first difference."""
    try:
        book = load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise Tampered(f"it is not a readable workbook ({type(exc).__name__})") from None
    try:
        if MANIFEST not in book.sheetnames:
            raise Tampered("it has no manifest sheet")
        found = _text_rows(book[MANIFEST])
        text = "".join(row[1] for row in found[4:] if len(row) > 1)
        manifest = load_manifest(text, "xlsx")
        if found != manifest_rows(manifest):
            raise Tampered("its manifest sheet was changed after the report was signed")
        expected = [CONTENTS, *(p for s in manifest.sections for p in s.parts), MANIFEST]
        if book.sheetnames != expected:
            raise Tampered("its sheets are not those the manifest lists")
        if _text_rows(book[CONTENTS]) != contents_rows(manifest):
            raise Tampered("its contents sheet was changed after the report was signed")
        check_content(manifest, key, lambda entry: _section_rows(book, entry))
        return manifest
    finally:
        book.close()
