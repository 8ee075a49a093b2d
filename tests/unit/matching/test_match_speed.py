"""The speed work of issue 14 changes no result: packed sorts order as np.lexsort does, payer
pairs keep the same rows, and files read side by side raise the error a sequential read would."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from recon.errors import InputFileError
from recon.matching import read_inputs
from recon.matching.book import pair_key
from recon.matching.frames import (
    INVOICE_COLUMNS,
    PAYOUT_COLUMNS,
    PAYOUT_LINE_COLUMNS,
    TRANSACTION_COLUMNS,
)
from recon.matching.prepare import _best_per_pair
from recon.matching.vec import first_of_groups, lexsort


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [0, 7, 5_000, 60_000])
def test_packed_lexsort_is_np_lexsort(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 4, n)
    signed = rng.integers(-300, 300, n).astype(np.int32)
    flags = rng.random(n) < 0.5
    wide = rng.integers(0, 2**40, n).astype(np.uint64)  # too wide to pack with others
    for keys in ((small,), (signed, small), (flags, signed, small), (-small, flags), (wide, small)):
        assert np.array_equal(lexsort(keys), np.lexsort(keys))


@pytest.mark.parametrize("seed", range(4))
def test_best_per_pair_keeps_the_rows_the_hashed_lexsort_kept(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 50_000
    p = np.sort(rng.integers(0, 3_000, n))
    client = rng.integers(0, 400, n)
    level = rng.integers(1, 3, n)
    kc = rng.integers(1, 200, n)
    pairs = pair_key(p, client.astype(np.uint64))
    order = np.lexsort((kc, -level, pairs))
    expected = np.sort(order[first_of_groups(pairs[order])])
    assert np.array_equal(_best_per_pair(p, client, level, kc), expected)


INVOICE_HEADER = list(INVOICE_COLUMNS)  # the files' headers are the engine's own columns
TXN_HEADER = list(TRANSACTION_COLUMNS)
INVOICE = ["1", "", "1", "A", "", "2026-03-01", "2026-03-15", "19.99", "19.99", "EUR", "Unpaid"]
TXN = ["t1", "bank", "a", "2026-03-10", "19.99", "EUR", "A", "1"]
PAYOUT_HEADER = list(PAYOUT_COLUMNS)
LINE_HEADER = list(PAYOUT_LINE_COLUMNS)


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _files(tmp_path: Path, **bad: list[list[str]]) -> dict[str, Path]:
    good = {
        "invoices": [INVOICE_HEADER, INVOICE],
        "transactions": [TXN_HEADER, TXN],
        "payouts": [PAYOUT_HEADER, ["po1", "stripe", "2026-03-11", "1.00", "EUR", "paid"]],
        "payout_lines": [LINE_HEADER, ["po1", "t1"]],
    }
    return {
        name: _write(tmp_path / f"{name}.csv", bad.get(name, rows)) for name, rows in good.items()
    }


def _error(files: dict[str, Path]) -> str:
    with pytest.raises(InputFileError) as caught:
        read_inputs(**files)
    return str(caught.value)


def test_a_file_that_cannot_be_read_is_reported_before_a_bad_value(tmp_path: Path) -> None:
    bad_value = [INVOICE_HEADER, [*INVOICE[:7], "x", *INVOICE[8:]]]
    no_amount = [TXN_HEADER[:4] + TXN_HEADER[5:], TXN[:4] + TXN[5:]]
    message = _error(_files(tmp_path, invoices=bad_value, transactions=no_amount))
    assert "transactions.csv has no column 'amount'" in message


def test_bad_values_are_reported_in_the_sequential_order(tmp_path: Path) -> None:
    bad_invoice = [INVOICE_HEADER, [*INVOICE[:7], "x", *INVOICE[8:]]]
    bad_txn = [TXN_HEADER, [*TXN[:4], "y", *TXN[5:]]]
    bad_payout = [PAYOUT_HEADER, ["po1", "paypal", "2026-03-11", "1.00", "EUR", "paid"]]
    files = _files(tmp_path, invoices=bad_invoice, transactions=bad_txn, payouts=bad_payout)
    assert "payouts.csv row 2, column source" in _error(files)
    files = _files(tmp_path, invoices=bad_invoice, transactions=bad_txn)
    assert "invoices.csv row 2, column total" in _error(files)
    files = _files(tmp_path, transactions=bad_txn)
    assert "transactions.csv row 2, column amount" in _error(files)


def test_good_files_read_the_same_with_or_without_payouts(tmp_path: Path) -> None:
    files = _files(tmp_path)
    both = read_inputs(**files)
    two = read_inputs(files["invoices"], files["transactions"])
    assert both.invoices.equals(two.invoices) and both.transactions.equals(two.transactions)
    assert list(both.payout_lines["transaction_id"]) == ["t1"] and two.payout_lines.empty
