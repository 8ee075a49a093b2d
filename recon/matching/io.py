"""Files in and out of `recon match` (DESIGN §4.3): read them, write the three outputs.

Validation and typing of what was read is `recon.matching.validate`; a bad input is an
`InputFileError` whose message is one sentence naming the file, row and column at fault.
"""

from __future__ import annotations

import csv
import json
import os
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
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
    CODED_COLUMNS,
    EXCEPTION_COLUMNS,
    INVOICE_COLUMNS,
    PAYOUT_COLUMNS,
    PAYOUT_LINE_COLUMNS,
    RECORDED_COLUMNS,
    TRANSACTION_COLUMNS,
    MatchInputs,
    MatchResult,
    empty_payout_lines,
    empty_payouts,
    empty_recorded,
)
from recon.matching.parsing import format_minor
from recon.matching.validate import (
    inputs_from_frames,
    prepare_invoices,
    prepare_payout_lines,
    prepare_payouts,
    prepare_recorded,
    prepare_transactions,
)
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

_CODED_TEXT = pa.dictionary(pa.int32(), pa.large_string())


def read_table(path: Path, columns: Sequence[str], option: str) -> pa.Table:
    """Read a CSV (UTF-8, header row) or Parquet file: the needed columns, as read."""
    label = path.name
    if not path.is_file():
        raise InputFileError(f"{path} (given to {option}) does not exist or is not a file.")
    if path.suffix.lower() in {".parquet", ".pq"}:
        table = _read_parquet(path, label)
    else:
        table = _read_csv(path, label, coded=CODED_COLUMNS.intersection(columns))
    missing = [name for name in columns if name not in table.column_names]
    if missing:
        raise InputFileError(
            f"{label} has no column {missing[0]!r} in its header row; "
            f"{option} needs the columns {', '.join(columns)}."
        )
    return table.select(list(columns))


def _read_csv(path: Path, label: str, coded: Collection[str] = ()) -> pa.Table:
    """Every column as text; the `coded` ones dictionary-encoded (few distinct values)."""
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
                column_types={
                    name: _CODED_TEXT if name in coded else pa.large_string() for name in names
                },
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
    """Read and validate the input files of `recon match`.

    Each file is read and validated in its own job, two or more at a time, so that a file's
    raw text is dropped once its typed frame is made (lower peak memory than reading all five
    first). Errors are those of reading all the files in order, then of validating them in
    `inputs_from_frames`'s order: the same error whatever finishes first.
    """
    if (payouts is None) != (payout_lines is None):
        raise InputFileError("--payouts and --payout-lines go together; give both or neither.")
    with _system_memory_pool():
        return _read_inputs(invoices, transactions, recorded, payouts, payout_lines)


@dataclass
class _PoolSwap:
    """How many reads are under way, and the pool to put back when the last one ends."""

    readers: int = 0
    saved: Any = None


_SWAP = _PoolSwap()
_SWAP_LOCK = threading.Lock()


@contextmanager
def _system_memory_pool() -> Iterator[None]:
    """Arrow allocates from the C library's allocator meanwhile (buffers keep their pool).

    At 1M invoices, reading with mimalloc (Arrow's default here) spent 2.0-3.0 s of system time
    on fresh memory (its huge-page arenas) against 0.8 s with malloc, took 2.1 s against 1.4 s,
    and held 150 MiB more once read (bench/results/match_read.json). Reads side by side in
    threads share it.
    """
    with _SWAP_LOCK:
        if _SWAP.readers == 0:
            _SWAP.saved = pa.default_memory_pool()
            pa.set_memory_pool(pa.system_memory_pool())
        _SWAP.readers += 1
    try:
        yield
    finally:
        with _SWAP_LOCK:
            _SWAP.readers -= 1
            if _SWAP.readers == 0:
                pa.set_memory_pool(_SWAP.saved)


def _read_inputs(
    invoices: Path,
    transactions: Path,
    recorded: Path | None,
    payouts: Path | None,
    payout_lines: Path | None,
) -> MatchInputs:
    with ThreadPoolExecutor(max_workers=min(3, os.cpu_count() or 1)) as pool:
        invoices_job = pool.submit(
            _read_and_check, invoices, INVOICE_COLUMNS, "--invoices", prepare_invoices
        )
        transactions_job = pool.submit(
            _read_and_check,
            transactions,
            TRANSACTION_COLUMNS,
            "--transactions",
            prepare_transactions,
        )
        recorded_job = (
            pool.submit(_read_and_check, recorded, RECORDED_COLUMNS, "--recorded", prepare_recorded)
            if recorded is not None
            else None
        )
        payouts_job = (
            pool.submit(_read_payouts, payouts, payout_lines)
            if payouts is not None and payout_lines is not None
            else None
        )
        invoices_done = invoices_job.result()
        transactions_done = transactions_job.result()
        recorded_done = recorded_job.result() if recorded_job is not None else None
        payouts_done = payouts_job.result() if payouts_job is not None else None
    outcomes = [invoices_done, transactions_done, recorded_done, payouts_done]
    # reading errors in the order of the files, then checking errors in the order of
    # inputs_from_frames: payouts, payout lines, invoices, transactions, recorded
    for outcome in outcomes:
        if outcome is not None and outcome.read_error is not None:
            raise outcome.read_error
    for outcome in (payouts_done, invoices_done, transactions_done, recorded_done):
        if outcome is not None and outcome.check_error is not None:
            raise outcome.check_error
    typed_payouts, lines = (
        payouts_done.frames if payouts_done is not None else (empty_payouts(), empty_payout_lines())
    )
    inputs = MatchInputs(
        invoices=invoices_done.frames[0],
        transactions=transactions_done.frames[0],
        recorded=recorded_done.frames[0] if recorded_done is not None else empty_recorded(),
        payouts=typed_payouts,
        payout_lines=lines,
    )
    # the allocator keeps the freed raw text for reuse; give it back to the system
    pa.default_memory_pool().release_unused()
    return inputs


@dataclass
class _Outcome:
    """One input file read and checked: its typed frames, or the error of either step."""

    frames: tuple[pd.DataFrame, ...] = ()
    read_error: InputFileError | None = None
    check_error: InputFileError | None = None


def _read_and_check(
    path: Path,
    columns: Sequence[str],
    option: str,
    check: Callable[[pa.Table, str], pd.DataFrame],
) -> _Outcome:
    try:
        table = read_table(path, columns, option)
    except InputFileError as exc:
        return _Outcome(read_error=exc)
    try:
        return _Outcome(frames=(check(table, path.name),))
    except InputFileError as exc:
        return _Outcome(check_error=exc)


def _read_payouts(payouts: Path, payout_lines: Path) -> _Outcome:
    """Payouts, then their lines (checked against the payouts)."""
    try:
        payout_table = read_table(payouts, PAYOUT_COLUMNS, "--payouts")
    except InputFileError as exc:
        return _Outcome(read_error=exc)
    try:
        lines_table = read_table(payout_lines, PAYOUT_LINE_COLUMNS, "--payout-lines")
    except InputFileError as exc:
        return _Outcome(read_error=exc)
    try:
        typed = prepare_payouts(payout_table, payouts.name)
        return _Outcome(frames=(typed, prepare_payout_lines(lines_table, typed, payout_lines.name)))
    except InputFileError as exc:
        return _Outcome(check_error=exc)


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
