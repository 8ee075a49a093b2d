"""Reading the `recon match` input files: every value, good or bad, gives what the row-by-row
reader of commit 774b941 gave (the frames, or the same message), now that codes, dates and
amounts are checked once per distinct value; and the reader leaves Arrow's memory pool as it was.

`match_inputs_outcomes.json` holds that reader's outcome for each variation of `GOOD` below: one
value of one column replaced (by each of `VALUES`, and by a copy of a key), or a few at once.
"""

from __future__ import annotations

import csv
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pytest

from recon.errors import InputFileError
from recon.matching import read_inputs
from recon.matching.frames import (
    INVOICE_COLUMNS,
    PAYOUT_COLUMNS,
    PAYOUT_LINE_COLUMNS,
    RECORDED_COLUMNS,
    TRANSACTION_COLUMNS,
)
from recon.matching.validate import prepare_invoices, prepare_transactions

FILES = ("invoices", "transactions", "recorded", "payouts", "payout_lines")
# fmt: off
GOOD: dict[str, list[list[str]]] = {
    "invoices": [
        list(INVOICE_COLUMNS),
        ["1", "INV-1", "c1", "A", "", "2026-03-01", "2026-03-15", "19.99", "19.99", "EUR", "Unpaid"],
        ["2", " INV-2 ", " c2", "B ", "Co", "2026-03-02", "", "1000", "500", "jpy", "paid"],
        ["3", "INV-3", "c3", "C", "", "2026-03-03", " 2026-03-20", "1.234", "0.000", " BHD ", "Draft"],
    ],
    "transactions": [
        list(TRANSACTION_COLUMNS),
        ["t1", "bank", "a", "2026-03-10", "19.99", "EUR", "A", "1"],
        ["t2", "Stripe ", "", "2026-03-11", "1000", "JPY", "B", "2"],
        ["t3", "gocardless", "b", "2026-03-12", "-1.234", "bhd", "", ""],
    ],
    "recorded": [
        list(RECORDED_COLUMNS),
        ["w1", "1", "2026-03-10", "19.99", "0.30", "EUR", "Stripe ", " ch_1 "],
        ["w2", "2", "2026-03-11", "1000", "", "JPY", "bank", ""],
        ["w3", "3", "2026-03-12", "1.234", "0.001", "BHD", "", ""],
    ],
    "payouts": [
        list(PAYOUT_COLUMNS),
        ["po1", "stripe", "2026-03-11", "1.00", "EUR", "paid"],
        ["po2", "GoCardless", "2026-03-12", "5", "JPY", " Pending"],
    ],
    "payout_lines": [list(PAYOUT_LINE_COLUMNS), ["po1", "t1"], ["po2", "t2"]],
}
# fmt: on
VALUES = (
    "",
    " ",
    "\u00a0",
    "x",
    "19,99",
    "1.2345",
    "-1",
    "+5",
    "1e3",
    ".5",
    "007",
    "2026-02-30",
    "2026-3-1",
    " 2026-03-01 ",
    "EURO",
    "eur ",
    "paypal",
    "\u0663",
    "1234567890123456789",
    "Paid",
    "PENDING",
    "\t19.99",
)  # fmt: skip
KEYS = {
    "invoices": "invoice_id",
    "transactions": "transaction_id",
    "recorded": "whmcs_txn_id",
    "payouts": "payout_id",
    "payout_lines": "transaction_id",
}
Change = tuple[str, int, str, str]
SEVERAL: list[list[Change]] = [
    [("invoices", 2, "total", "x"), ("invoices", 1, "status", "Nope")],
    [("invoices", 2, "currency", "ZZZ"), ("invoices", 1, "issued_on", "x")],
    [("invoices", 2, "invoice_id", "1"), ("invoices", 3, "currency", "ZZZ")],
    [("invoices", 2, "due_on", "x"), ("invoices", 1, "balance", "-1")],
    [("transactions", 2, "amount", "x"), ("transactions", 1, "booked_on", "x")],
    [("transactions", 3, "currency", "ZZZ"), ("transactions", 2, "source", "x")],
    [("transactions", 3, "amount", "1.2345"), ("transactions", 2, "amount", "x")],
    [("transactions", 2, "transaction_id", "t1"), ("transactions", 3, "currency", "")],
    [("recorded", 2, "fees", "-1"), ("recorded", 1, "amount", "x")],
    [("payouts", 1, "source", "bank"), ("invoices", 1, "total", "x")],
    [("payout_lines", 1, "payout_id", "po9"), ("transactions", 1, "amount", "x")],
    [("invoices", 1, "total", "x"), ("transactions", 1, "amount", "x")],
    [("transactions", 1, "amount", "x"), ("recorded", 1, "amount", "x")],
]


def variations() -> list[list[Change]]:
    """Every variation of `GOOD` the outcomes file covers, in its order."""
    out: list[list[Change]] = [[]]
    for name, rows in GOOD.items():
        for column in rows[0]:
            out.extend([(name, 2, column, value)] for value in VALUES)
        key = rows[0].index(KEYS[name])
        out.append([(name, 2, KEYS[name], rows[1][key])])
        out.append([(name, len(rows) - 1, KEYS[name], " " + rows[1][key])])
    return out + SEVERAL


def case_key(changes: list[Change]) -> str:
    return json.dumps(changes, ensure_ascii=True)


def write_files(folder: Path, changes: list[Change]) -> dict[str, Path]:
    files = {name: [list(row) for row in rows] for name, rows in GOOD.items()}
    for name, row, column, value in changes:
        files[name][row][files[name][0].index(column)] = value
    paths = {}
    for name, rows in files.items():
        paths[name] = folder / f"{name}.csv"
        with paths[name].open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
    return paths


def digest(frames: dict[str, pd.DataFrame]) -> str:
    """The frames' columns, dtypes and values, as one hash."""
    text = [
        f"{name}.{column}:{frame[column].dtype}:{frame[column].tolist()!r}"
        for name, frame in frames.items()
        for column in frame.columns
    ]
    return hashlib.sha256("\n".join(text).encode()).hexdigest()[:20]


def outcome(paths: dict[str, Path], reader: Any = read_inputs) -> str:
    """The error message, or the digest of the frames read."""
    try:
        inputs = reader(**paths)
    except InputFileError as exc:
        return str(exc)
    return digest({name: getattr(inputs, name) for name in FILES})


OUTCOMES: dict[str, str] = json.loads(
    (Path(__file__).parent / "match_inputs_outcomes.json").read_text(encoding="utf-8")
)


def test_the_outcomes_file_covers_every_variation() -> None:
    assert sorted(OUTCOMES) == sorted(case_key(c) for c in variations())
    errors = [value for value in OUTCOMES.values() if " row " in value]
    assert 400 < len(errors) < len(OUTCOMES) - 200  # both kinds are there in number


@pytest.mark.parametrize("changes", variations(), ids=case_key)
def test_each_variation_reads_as_the_row_by_row_reader_did(
    tmp_path: Path, changes: list[Change]
) -> None:
    assert outcome(write_files(tmp_path, changes)) == OUTCOMES[case_key(changes)]


def test_the_memory_pool_is_given_back_after_reading_or_failing(tmp_path: Path) -> None:
    before = pa.default_memory_pool()
    read_inputs(**write_files(tmp_path, []))
    assert pa.default_memory_pool().backend_name == before.backend_name
    with pytest.raises(InputFileError):
        read_inputs(**write_files(tmp_path, [("invoices", 1, "total", "x")]))
    assert pa.default_memory_pool().backend_name == before.backend_name


def test_reads_side_by_side_give_the_pool_back_once_all_end(tmp_path: Path) -> None:
    before = pa.default_memory_pool().backend_name
    folders = [tmp_path / str(k) for k in range(4)]
    for folder in folders:
        folder.mkdir()
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(lambda f: read_inputs(**write_files(f, [])), folders))
    assert all(len(inputs.invoices) == 3 for inputs in done)
    assert pa.default_memory_pool().backend_name == before


def _chunked_dictionary(values: list[str], cut: int) -> pa.ChunkedArray:
    """Two chunks, each with its own dictionary (in another order), as the CSV reader makes."""
    return pa.chunked_array(
        [
            pa.array(values[:cut], type=pa.large_string()).dictionary_encode(),
            pa.array(values[cut:][::-1], type=pa.large_string())
            .dictionary_encode()
            .take(pa.array(np.arange(len(values) - cut)[::-1])),
        ]
    )


def test_dictionary_columns_in_chunks_read_as_plain_text() -> None:
    rows = [GOOD["transactions"][1 + i % 3][:] for i in range(12)]
    for i, row in enumerate(rows):
        row[0] = f"t{i}"
        row[3] = f"2026-03-{1 + i % 5:02d}"
    plain = {name: [row[k] for row in rows] for k, name in enumerate(TRANSACTION_COLUMNS)}
    table = pa.table({name: pa.array(v, type=pa.large_string()) for name, v in plain.items()})
    coded = table
    for name in ("source", "booked_on", "amount", "currency"):
        position = coded.column_names.index(name)
        coded = coded.set_column(position, name, _chunked_dictionary(plain[name], 5))
    assert coded.column("currency").num_chunks == 2
    expected = prepare_transactions(table)
    got = prepare_transactions(coded)
    assert digest({"t": got}) == digest({"t": expected})
    assert got["amount"].tolist()[:3] == [1999, 1000, -1234]


def test_a_bad_value_in_a_later_chunk_names_its_row() -> None:
    rows = [GOOD["invoices"][1][:] for _ in range(9)]
    for i, row in enumerate(rows):
        row[0] = str(i + 1)
    rows[7][7] = "1.999"  # EUR allows two decimals
    plain = {name: [row[k] for row in rows] for k, name in enumerate(INVOICE_COLUMNS)}
    table = pa.table({name: pa.array(v, type=pa.large_string()) for name, v in plain.items()})
    table = table.set_column(7, "total", _chunked_dictionary(plain["total"], 4))
    with pytest.raises(InputFileError) as caught:
        prepare_invoices(table, "invoices.csv")
    assert str(caught.value) == (
        "invoices.csv row 9, column total: '1.999' has more decimals than the currency allows."
    )


def test_files_with_only_their_header_read_as_typed_empty_frames(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "full").mkdir()
    paths = write_files(tmp_path / "empty", [])
    for name, path in paths.items():
        path.write_text(",".join(GOOD[name][0]) + "\n", encoding="utf-8")
    inputs = read_inputs(**paths)
    full = read_inputs(**write_files(tmp_path / "full", []))
    for name in FILES:
        frame, typed = getattr(inputs, name), getattr(full, name)
        assert frame.empty and not typed.empty and list(frame.columns) == list(typed.columns)
        assert list(frame.dtypes.astype(str)) == list(typed.dtypes.astype(str))


def test_frames_in_memory_with_categories_and_missing_values_read_as_their_text() -> None:
    invoices = pd.DataFrame(GOOD["invoices"][1:], columns=GOOD["invoices"][0])
    invoices.loc[1, "company_name"] = None  # missing text is "" and a missing due date is
    invoices.loc[1, "due_on"] = None  # the issue date, as with empty cells in a file
    as_text = prepare_invoices(invoices.fillna(""))
    invoices["currency"] = invoices["currency"].astype("category")
    invoices["status"] = invoices["status"].astype("category")
    for raw in (invoices, pa.Table.from_pandas(invoices, preserve_index=False)):
        got = prepare_invoices(raw)
        assert digest({"i": got}) == digest({"i": as_text})
    assert as_text["due_on"].iloc[1] == as_text["issued_on"].iloc[1]
    assert as_text["currency"].tolist() == ["EUR", "JPY", "BHD"]
