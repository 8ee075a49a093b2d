"""Files in and out of `recon match` (DESIGN §4.3): read them, write the three outputs.

Validation and typing of what was read is `recon.matching.validate`; a bad input is an
`InputFileError` whose message is one sentence naming the file, row and column at fault.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from recon.errors import InputFileError
from recon.matching.frames import (
    ALLOCATION_COLUMNS,
    EXCEPTION_COLUMNS,
    INVOICE_COLUMNS,
    PAYOUT_COLUMNS,
    PAYOUT_LINE_COLUMNS,
    RECORDED_COLUMNS,
    TRANSACTION_COLUMNS,
    MatchInputs,
    MatchResult,
)
from recon.matching.parsing import format_minor
from recon.matching.validate import inputs_from_frames
from recon.money import minor_exponent
from recon.spreadsheet_safe import safe_table

__all__ = [
    "allocations_table",
    "exceptions_table",
    "inputs_from_frames",
    "read_inputs",
    "read_table",
    "write_outputs",
]


def read_table(path: Path, columns: Sequence[str], option: str) -> pa.Table:
    """Read a CSV (UTF-8, header row) or Parquet file: the needed columns, as read."""
    label = path.name
    if not path.is_file():
        raise InputFileError(f"{path} (given to {option}) does not exist or is not a file.")
    if path.suffix.lower() in {".parquet", ".pq"}:
        table = _read_parquet(path, label)
    else:
        table = _read_csv(path, label)
    missing = [name for name in columns if name not in table.column_names]
    if missing:
        raise InputFileError(
            f"{label} has no column {missing[0]!r} in its header row; "
            f"{option} needs the columns {', '.join(columns)}."
        )
    return table.select(list(columns))


def _read_csv(path: Path, label: str) -> pa.Table:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError:
        raise InputFileError(f"{label} is not UTF-8 text; save it as UTF-8 CSV.") from None
    except OSError as exc:
        raise InputFileError(f"{label} cannot be read ({exc.strerror}).") from None
    if not header:
        raise InputFileError(f"{label} is empty; it needs a header row and data rows.")
    names = [name.strip() for name in header]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InputFileError(f"{label} has the column {duplicates[0]!r} twice in its header row.")
    try:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.large_string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        detail = str(exc).splitlines()[0].rstrip(".")
        raise InputFileError(f"{label} cannot be read as CSV ({detail}).") from None


def _read_parquet(path: Path, label: str) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        detail = str(exc).splitlines()[0].rstrip(".")
        raise InputFileError(f"{label} cannot be read as Parquet ({detail}).") from None
    for name, kind in zip(table.column_names, table.schema.types, strict=True):
        if pa.types.is_floating(kind):
            raise InputFileError(
                f"{label} stores column {name!r} as floating point; "
                "write amounts as decimal strings or decimals."
            )
    return table


def read_inputs(
    invoices: Path,
    transactions: Path,
    recorded: Path | None = None,
    payouts: Path | None = None,
    payout_lines: Path | None = None,
) -> MatchInputs:
    """Read and validate the input files of `recon match`."""
    if (payouts is None) != (payout_lines is None):
        raise InputFileError("--payouts and --payout-lines go together; give both or neither.")
    frames: dict[str, pa.Table | None] = {
        "invoices": read_table(invoices, INVOICE_COLUMNS, "--invoices"),
        "transactions": read_table(transactions, TRANSACTION_COLUMNS, "--transactions"),
        "recorded": read_table(recorded, RECORDED_COLUMNS, "--recorded") if recorded else None,
        "payouts": read_table(payouts, PAYOUT_COLUMNS, "--payouts") if payouts else None,
        "payout_lines": read_table(payout_lines, PAYOUT_LINE_COLUMNS, "--payout-lines")
        if payout_lines
        else None,
    }
    paths = {
        "invoices": invoices,
        "transactions": transactions,
        "recorded": recorded,
        "payouts": payouts,
        "payout_lines": payout_lines,
    }
    labels = {key: path.name for key, path in paths.items() if path is not None}
    return inputs_from_frames(
        invoices=frames["invoices"],
        transactions=frames["transactions"],
        recorded=frames["recorded"],
        payouts=frames["payouts"],
        payout_lines=frames["payout_lines"],
        labels=labels,
    )


def _exponents_of(currencies: pd.Series) -> np.ndarray:
    if not len(currencies):
        return np.zeros(0, np.int64)
    codes, uniques = pd.factorize(currencies)
    table = np.array([minor_exponent(str(c)) for c in uniques], dtype=np.int64)
    return np.asarray(table[codes], dtype=np.int64)


def allocations_table(result: MatchResult) -> pa.Table:
    """The allocations as written to allocations.csv (amounts as decimal strings)."""
    frame = result.allocations
    amounts = format_minor(frame["amount"].to_numpy(), _exponents_of(frame["currency"]))
    columns = {
        "transaction_id": pa.array(frame["transaction_id"], type=pa.large_string()),
        "invoice_id": pa.array(frame["invoice_id"].to_numpy()),
        "amount": amounts,
        "rule": pa.array(frame["rule"], type=pa.large_string()),
        "confidence": pa.array(frame["confidence"].to_numpy()),
        "decision": pa.array(frame["decision"], type=pa.large_string()),
    }
    return pa.table([columns[name] for name in ALLOCATION_COLUMNS], names=list(ALLOCATION_COLUMNS))


def exceptions_table(result: MatchResult) -> pa.Table:
    """The exceptions as written to exceptions.csv (no invoice → empty cell)."""
    frame = result.exceptions
    amounts = format_minor(frame["amount"].to_numpy(), _exponents_of(frame["currency"]))
    invoice = frame["invoice_id"].to_numpy()
    invoice_text = pc.if_else(
        pa.array(invoice > 0), pc.cast(pa.array(invoice), pa.large_string()), ""
    )
    columns = {
        "kind": pa.array(frame["kind"], type=pa.large_string()),
        "transaction_id": pa.array(frame["transaction_id"], type=pa.large_string()),
        "invoice_id": invoice_text,
        "amount": amounts,
        "detail": pa.array(frame["detail"], type=pa.large_string()),
    }
    return pa.table([columns[name] for name in EXCEPTION_COLUMNS], names=list(EXCEPTION_COLUMNS))


def write_outputs(result: MatchResult, out_dir: Path, summary: dict[str, Any]) -> list[Path]:
    """Write allocations.csv, exceptions.csv and summary.json into `out_dir`."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(
            f"cannot create the output folder {out_dir} ({exc.strerror})."
        ) from None
    written = []
    for name, table in (
        ("allocations.csv", allocations_table(result)),
        ("exceptions.csv", exceptions_table(result)),
    ):
        path = out_dir / name
        _write_csv(safe_table(table, numbers=("amount",)), path)  # no formula cells
        written.append(path)
    path = out_dir / "summary.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    written.append(path)
    return written


def _write_csv(table: pa.Table, path: Path) -> None:
    tmp = path.with_suffix(".csv.tmp")
    try:
        pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(quoting_style="needed"))
        tmp.replace(path)
    except OSError as exc:
        raise InputFileError(f"cannot write {path} ({exc.strerror}).") from None
