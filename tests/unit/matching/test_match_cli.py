"""`recon match` on files: the three outputs, and one clear sentence for a bad file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
import typer
from typer.testing import CliRunner, Result

from apps.cli.match import match_command
from connectors.sandbox.synth import SynthConfig, generate
from recon.errors import ConfigError, InputFileError, ReconError
from recon.matching.audit import CONFIRMATIONS
from recon.matching.frames import ALLOCATION_COLUMNS, EXCEPTION_COLUMNS, EXCEPTION_KINDS
from recon.matching.rules import RULES

app = typer.Typer()
app.command("match")(match_command)


@app.command("version")
def _version() -> None:  # a second command keeps `match` a sub-command, as in the real CLI
    """Unused."""


runner = CliRunner()


def invoke(*args: str, **options: Path) -> Result:
    """Run `match` with `--name value` for each keyword (underscores become dashes)."""
    flags = [
        x for name, value in options.items() for x in (f"--{name.replace('_', '-')}", str(value))
    ]
    return runner.invoke(app, ["match", *args, *flags])


@pytest.fixture
def world_files(tmp_path: Path) -> dict[str, Path]:
    world = generate(SynthConfig(n_invoices=400, seed=3))
    paths = world.write_csv(tmp_path / "in")
    config = tmp_path / "in" / "tenant.toml"
    config.write_text('[matching]\ninvoice_number_format = "INV-{YEAR}-{NUMBER}"\n')
    return {**paths, "config": config}


def full_args(files: dict[str, Path], out: Path) -> dict[str, Path]:
    names = ("invoices", "transactions", "recorded", "payouts", "payout_lines", "config")
    return {**{name: files[name] for name in names}, "out": out}


def test_match_writes_the_three_outputs(world_files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke(**full_args(world_files, out))
    assert result.exit_code == 0, result.output
    with (out / "allocations.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == ALLOCATION_COLUMNS
    assert {r[5] for r in rows[1:]} <= {"auto", "review"} and len(rows) > 100
    with (out / "exceptions.csv").open() as handle:
        exception_rows = list(csv.reader(handle))
    assert tuple(exception_rows[0]) == EXCEPTION_COLUMNS
    # every kind and rule written is one the documentation names
    assert {r[0] for r in exception_rows[1:]} <= set(EXCEPTION_KINDS)
    assert {r[3] for r in rows[1:]} <= {rule.name for rule in RULES} | set(CONFIRMATIONS)
    summary = json.loads((out / "summary.json").read_text())
    auto_rows = sum(1 for r in rows[1:] if r[5] == "auto")
    assert summary["allocations"]["auto"]["rows"] == auto_rows
    assert set(summary["timings_seconds"]) >= {"read", "match", "match_stages"}
    assert "allocated (auto)" in result.output  # the summary table


def test_amounts_in_outputs_are_decimal_strings(
    world_files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert invoke(**full_args(world_files, out)).exit_code == 0
    allocations = pd.read_csv(out / "allocations.csv", dtype=str)
    assert allocations["amount"].str.fullmatch(r"\d+\.\d{2}").all()


def test_only_the_two_required_files(world_files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke(
        invoices=world_files["invoices"], transactions=world_files["transactions"], out=out
    )
    assert result.exit_code == 0, result.output
    assert (out / "allocations.csv").exists()


def test_parquet_inputs(world_files: dict[str, Path], tmp_path: Path) -> None:
    for name in ("invoices", "transactions"):
        frame = pd.read_csv(world_files[name], dtype=str, keep_default_na=False)
        pq.write_table(
            pa.Table.from_pandas(frame, preserve_index=False), tmp_path / f"{name}.parquet"
        )
    out = tmp_path / "out"
    result = invoke(
        invoices=tmp_path / "invoices.parquet",
        transactions=tmp_path / "transactions.parquet",
        out=out,
    )
    assert result.exit_code == 0, result.output


def _error(result: Result) -> ReconError:
    assert result.exit_code != 0
    assert isinstance(result.exception, ReconError), result.exception
    message = str(result.exception)
    assert "\n" not in message and message.endswith(".")
    return result.exception


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


INVOICE_HEADER = [
    "invoice_id", "invoice_num", "client_id", "client_name", "company_name", "issued_on",
    "due_on", "total", "balance", "currency", "status",
]  # fmt: skip
TXN_HEADER = [
    "transaction_id", "source", "account_id", "booked_on", "amount", "currency", "counterparty",
    "reference",
]  # fmt: skip
GOOD_INVOICE = [
    "10234",
    "",
    "1",
    "John Smith",
    "",
    "2026-03-01",
    "2026-03-15",
    "19.99",
    "19.99",
    "EUR",
    "Unpaid",
]
GOOD_TXN = ["t1", "bank", "a", "2026-03-10", "19.99", "EUR", "John Smith", "Invoice 10234"]


def _bad_run(tmp_path: Path, invoices: list[list[str]], txns: list[list[str]]) -> ReconError:
    inv = _write(tmp_path / "invoices.csv", invoices)
    tx = _write(tmp_path / "bank.csv", txns)
    return _error(invoke(invoices=inv, transactions=tx, out=tmp_path / "o"))


def test_missing_column(tmp_path: Path) -> None:
    header = [c for c in INVOICE_HEADER if c != "balance"]
    row = GOOD_INVOICE[:8] + GOOD_INVOICE[9:]
    error = _bad_run(tmp_path, [header, row], [TXN_HEADER, GOOD_TXN])
    assert isinstance(error, InputFileError)
    assert "invoices.csv" in str(error) and "'balance'" in str(error)


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("amount", "19,99", ["bank.csv", "row 3", "amount", "'19,99'"]),
        ("amount", "19.999", ["bank.csv", "row 3", "amount", "more decimals"]),
        ("booked_on", "10.03.2026", ["bank.csv", "row 3", "booked_on", "YYYY-MM-DD"]),
        ("booked_on", "2026-02-30", ["bank.csv", "row 3", "booked_on"]),
        ("currency", "EURO", ["bank.csv", "row 3", "currency", "ISO 4217"]),
        ("source", "paypal", ["bank.csv", "row 3", "source", "bank, stripe, gocardless"]),
        ("transaction_id", "t1", ["bank.csv", "row 3", "transaction_id", "twice"]),
    ],
)
def test_bad_transaction_values(tmp_path: Path, column: str, value: str, words: list[str]) -> None:
    bad = list(GOOD_TXN)
    bad[TXN_HEADER.index(column)] = value
    if column != "transaction_id":
        bad[0] = "t2"
    error = _bad_run(tmp_path, [INVOICE_HEADER, GOOD_INVOICE], [TXN_HEADER, GOOD_TXN, bad])
    assert isinstance(error, InputFileError)
    for word in words:
        assert word in str(error)


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("invoice_id", "INV-1", ["invoices.csv", "row 2", "invoice_id", "whole number"]),
        ("total", "", ["invoices.csv", "row 2", "total", "empty"]),
        ("balance", "-1.00", ["invoices.csv", "row 2", "balance", "negative"]),
        ("status", "Overdue", ["invoices.csv", "row 2", "status", "Unpaid"]),
    ],
)
def test_bad_invoice_values(tmp_path: Path, column: str, value: str, words: list[str]) -> None:
    bad = list(GOOD_INVOICE)
    bad[INVOICE_HEADER.index(column)] = value
    error = _bad_run(tmp_path, [INVOICE_HEADER, bad], [TXN_HEADER, GOOD_TXN])
    for word in words:
        assert word in str(error)


def test_missing_file(tmp_path: Path) -> None:
    error = _error(
        invoke(invoices=tmp_path / "nope.csv", transactions=tmp_path / "nope2.csv", out=tmp_path)
    )
    assert isinstance(error, InputFileError) and "nope.csv" in str(error)


def test_not_utf8(tmp_path: Path) -> None:
    inv = tmp_path / "invoices.csv"
    inv.write_bytes(
        ",".join(INVOICE_HEADER).encode()
        + b"\n"
        + ",".join(GOOD_INVOICE).replace("John", "J\xf6hn").encode("latin-1")
        + b"\n"
    )
    tx = _write(tmp_path / "bank.csv", [TXN_HEADER, GOOD_TXN])
    error = _error(invoke(invoices=inv, transactions=tx, out=tmp_path / "o"))
    assert "invoices.csv" in str(error)


def test_payouts_need_their_lines(world_files: dict[str, Path], tmp_path: Path) -> None:
    error = _error(
        invoke(
            invoices=world_files["invoices"],
            transactions=world_files["transactions"],
            payouts=world_files["payouts"],
            out=tmp_path / "o",
        )
    )
    assert "--payout-lines" in str(error)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("auto_treshold = 95\n", ["unknown setting", "auto_treshold"]),
        ("auto_threshold = 150\n", ["auto_threshold"]),
        ("invoice_number_format = 'INV-{YEAR}'\n", ["invoice_number_format", "{NUMBER}"]),
        ("review_threshold = 95\nauto_threshold = 90\n", ["review_threshold"]),
        ("not toml [", ["not valid TOML"]),
    ],
)
def test_bad_config(
    tmp_path: Path, world_files: dict[str, Path], text: str, words: list[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    error = _error(
        invoke(
            invoices=world_files["invoices"],
            transactions=world_files["transactions"],
            config=config,
            out=tmp_path / "o",
        )
    )
    assert isinstance(error, ConfigError)
    for word in words:
        assert word in str(error)


def test_json_config(tmp_path: Path, world_files: dict[str, Path]) -> None:
    config = tmp_path / "tenant.json"
    config.write_text(
        json.dumps({"auto_threshold": 99, "invoice_number_format": "INV-{YEAR}-{NUMBER}"})
    )
    out = tmp_path / "o"
    result = invoke(
        invoices=world_files["invoices"],
        transactions=world_files["transactions"],
        config=config,
        out=out,
    )
    assert result.exit_code == 0, result.output
    allocations = pd.read_csv(out / "allocations.csv", dtype=str)
    auto = allocations[allocations["decision"] == "auto"]
    assert (auto["confidence"].astype(int) >= 99).all() and len(auto) > 0
