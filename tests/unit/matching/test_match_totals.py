"""`recon match` totals stay exact at the largest amounts the files may hold (issue 9)."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import typer
from typer.testing import CliRunner

from apps.cli.match import match_command

app = typer.Typer()
app.command("match")(match_command)


@app.command("version")
def _version() -> None:  # keeps `match` a sub-command, as in the real CLI
    """Unused."""


HUGE = "40000000000000000.00"  # 4 * 10**18 minor units, just under the 2**62 bound


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _run(tmp_path: Path, invoices: list[list[str]], txns: list[list[str]]) -> dict[str, object]:
    header_inv = [
        "invoice_id", "invoice_num", "client_id", "client_name", "company_name", "issued_on",
        "due_on", "total", "balance", "currency", "status",
    ]  # fmt: skip
    header_txn = [
        "transaction_id", "source", "account_id", "booked_on", "amount", "currency",
        "counterparty", "reference",
    ]  # fmt: skip
    inv = _write(tmp_path / "invoices.csv", [header_inv, *invoices])
    tx = _write(tmp_path / "bank.csv", [header_txn, *txns])
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["match", "--invoices", str(inv), "--transactions", str(tx), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    summary: dict[str, object] = json.loads((out / "summary.json").read_text())
    return summary


def test_unmatched_huge_payments_total_exactly(tmp_path: Path) -> None:
    invoice = ["1", "", "1", "Ann Lee", "", "2026-03-01", "2026-03-15", "5.00", "5.00", "EUR"]
    txns = [
        [f"t{i}", "bank", "a", "2026-03-10", HUGE, "EUR", f"Payer {i}", "no reference"]
        for i in range(3)
    ]
    summary = _run(tmp_path, [[*invoice, "Unpaid"]], txns)
    exceptions = summary["exceptions"]
    assert isinstance(exceptions, dict)
    total = sum(Decimal(part["amount"].get("EUR", "0")) for part in exceptions.values())
    assert total == 3 * Decimal(HUGE)


def test_allocated_huge_payments_total_exactly(tmp_path: Path) -> None:
    invoices = [
        [
            str(10 + i),
            "",
            str(i),
            f"Client {i}",
            "",
            "2026-03-01",
            "2026-03-15",
            HUGE,
            HUGE,
            "EUR",
            "Unpaid",
        ]
        for i in range(3)
    ]
    txns = [
        [f"t{i}", "bank", "a", "2026-03-10", HUGE, "EUR", f"Client {i}", f"Invoice {10 + i}"]
        for i in range(3)
    ]
    summary = _run(tmp_path, invoices, txns)
    allocations = summary["allocations"]
    assert isinstance(allocations, dict)
    total = sum(Decimal(part["amount"].get("EUR", "0")) for part in allocations.values())
    assert total == 3 * Decimal(HUGE)
