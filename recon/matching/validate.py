"""Validate and type the §4.3 inputs, column by column with Arrow kernels (no Python loop).

A bad value is an `InputFileError` whose message is one sentence naming the file, the row
(counting the header as row 1, as a spreadsheet does) and the column at fault.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from recon.errors import InputFileError
from recon.matching.frames import (
    EXTRA_STATUSES,
    INVOICE_COLUMNS,
    INVOICE_STATUSES,
    PAYOUT_COLUMNS,
    PAYOUT_LINE_COLUMNS,
    RECORDED_COLUMNS,
    SOURCES,
    TRANSACTION_COLUMNS,
    MatchInputs,
    empty_payout_lines,
    empty_payouts,
    empty_recorded,
)
from recon.matching.parsing import ParseFailure, parse_days, parse_minor
from recon.money import ISO_4217_CODES, minor_exponent

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
Columns = dict[str, pa.Array]

_LS = pa.large_string()
_ISO = pa.array(sorted(ISO_4217_CODES), type=_LS)
_HEADER_ROW = 1


def _row(position: int) -> int:
    return position + _HEADER_ROW + 1


def _fail(label: str, position: int, column: str, value: object, reason: str) -> InputFileError:
    shown = str(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return InputFileError(f"{label} row {_row(position)}, column {column}: {shown!r} {reason}.")


def _first(mask: pa.Array | npt.NDArray[np.bool_]) -> int | None:
    values = mask.to_numpy(zero_copy_only=False) if isinstance(mask, pa.Array) else mask
    hits = np.flatnonzero(values)
    return int(hits[0]) if len(hits) else None


def columns_of(
    raw: pd.DataFrame | pa.Table | Mapping[str, pa.Array], names: Sequence[str]
) -> Columns:
    """The named columns as contiguous Arrow text arrays ("" for missing values)."""
    out: Columns = {}
    for name in names:
        if isinstance(raw, pa.Table):
            array = raw.column(name)
        elif isinstance(raw, pd.DataFrame):
            array = pa.array(raw[name], from_pandas=True)
        else:
            array = raw[name]
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        out[name] = pc.cast(array, _LS).fill_null("")
    return out


def _required(label: str, cols: Columns, names: Sequence[str]) -> None:
    for name in names:
        position = _first(pc.equal(pc.utf8_trim_whitespace(cols[name]), ""))
        if position is not None:
            raise _fail(label, position, name, "", "is empty; a value is required")


def _currencies(label: str, cols: Columns, name: str = "currency") -> pa.Array:
    codes = pc.utf8_upper(pc.utf8_trim_whitespace(cols[name]))
    position = _first(pc.invert(pc.is_in(codes, value_set=_ISO)))
    if position is not None:
        value = cols[name][position].as_py()
        raise _fail(label, position, name, value, "is not an ISO 4217 currency code")
    return codes


def _exponents(codes: pa.Array) -> I64:
    encoded = pc.dictionary_encode(codes)
    table = np.array([minor_exponent(str(c)) for c in encoded.dictionary.to_pylist()], np.int64)
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    return table[indices] if len(table) else np.zeros(len(codes), dtype=np.int64)


def _raise(label: str, column: str, failure: ParseFailure | None) -> None:
    if failure is not None:
        raise _fail(label, failure.position, column, failure.value, failure.reason)


def _amounts(label: str, cols: Columns, name: str, exponents: I64) -> I64:
    values, failure = parse_minor(cols[name], exponents)
    _raise(label, name, failure)
    return values


def _days(label: str, cols: Columns, name: str) -> I32:
    values, failure = parse_days(pc.utf8_trim_whitespace(cols[name]))
    _raise(label, name, failure)
    return values


def _whole_numbers(label: str, cols: Columns, name: str, what: str) -> I64:
    trimmed = pc.utf8_trim_whitespace(cols[name])
    position = _first(pc.invert(pc.match_substring_regex(trimmed, r"^\d{1,18}$")))
    if position is not None:
        raise _fail(label, position, name, cols[name][position].as_py(), f"is not {what}")
    return np.asarray(pc.cast(trimmed, pa.int64()).to_numpy(), dtype=np.int64)


def _unique(label: str, cols: Columns, name: str) -> None:
    values = cols[name]
    if len(pc.unique(values)) == len(values):
        return
    repeated = pd.Series(values.to_numpy(zero_copy_only=False)).duplicated().to_numpy()
    position = int(np.flatnonzero(repeated)[0])
    raise _fail(label, position, name, values[position].as_py(), "appears twice")


def _choice(
    label: str, cols: Columns, name: str, allowed: Sequence[str], canonical: bool
) -> pa.Array:
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(cols[name]))
    vocabulary = pa.array([value.lower() for value in allowed], type=_LS)
    code = pc.index_in(lowered, value_set=vocabulary)
    position = _first(pc.is_null(code))
    if position is not None:
        choices = ", ".join(allowed)
        raise _fail(label, position, name, cols[name][position].as_py(), f"is not one of {choices}")
    if not canonical:
        return lowered
    return pa.array(list(allowed), type=_LS).take(code)


def _frame(
    text: Columns, numbers: Mapping[str, npt.NDArray[np.generic]], order: Sequence[str]
) -> pd.DataFrame:
    """A typed frame: text columns stay Arrow-backed (pandas `str`), numbers are numpy."""
    frame: pd.DataFrame = pa.table(dict(text)).to_pandas() if text else pd.DataFrame()
    for name, values in numbers.items():
        frame[name] = values
    return frame[list(order)]


def _optional_amounts(
    label: str, raw: pd.DataFrame | pa.Table, name: str, exponents: I64
) -> I64 | None:
    """An optional, non-negative amount column (empty means zero); None when it is absent."""
    present = raw.column_names if isinstance(raw, pa.Table) else list(raw.columns)
    if name not in present:
        return None
    cols = columns_of(raw, (name,))
    trimmed = pc.utf8_trim_whitespace(cols[name])
    cols[name] = pc.if_else(pc.equal(trimmed, ""), "0", trimmed)
    values = _amounts(label, cols, name, exponents)
    position = _first(values < 0)
    if position is not None:
        raise _fail(label, position, name, cols[name][position].as_py(), "is negative")
    return values


def prepare_invoices(raw: pd.DataFrame | pa.Table, label: str = "invoices") -> pd.DataFrame:
    """Validate and type the invoices (text columns as in the file).

    Besides the §4.3 columns an in-process caller may pass `held` (an amount, like `balance`):
    money that allocations the engine does not see (earlier windows, people) already hold on
    the invoice. It caps what the engine may still allocate there; the engine scores payments
    against `balance`, so a payment scores the same whatever was allocated before.
    """
    cols = columns_of(raw, INVOICE_COLUMNS)
    _required(label, cols, ("invoice_id", "client_id", "issued_on", "total", "balance"))
    _required(label, cols, ("currency", "status"))
    invoice_id = _whole_numbers(label, cols, "invoice_id", "a WHMCS invoice id (a whole number)")
    _unique(label, cols, "invoice_id")
    currency = _currencies(label, cols)
    exponents = _exponents(currency)
    issued = _days(label, cols, "issued_on")
    due_text = pc.utf8_trim_whitespace(cols["due_on"])
    cols["due_on"] = pc.if_else(pc.equal(due_text, ""), cols["issued_on"], due_text)
    due = _days(label, cols, "due_on")
    total = _amounts(label, cols, "total", exponents)
    balance = _amounts(label, cols, "balance", exponents)
    for name, values in (("total", total), ("balance", balance)):
        position = _first(values < 0)
        if position is not None:
            raise _fail(label, position, name, cols[name][position].as_py(), "is negative")
    status = _choice(label, cols, "status", INVOICE_STATUSES + EXTRA_STATUSES, canonical=True)
    text = {
        "invoice_num": pc.utf8_trim_whitespace(cols["invoice_num"]),
        "client_id": pc.utf8_trim_whitespace(cols["client_id"]),
        "client_name": cols["client_name"],
        "company_name": cols["company_name"],
        "currency": currency,
        "status": status,
    }
    numbers: dict[str, npt.NDArray[np.generic]] = {
        "invoice_id": invoice_id,
        "issued_on": issued,
        "due_on": due,
        "total": total,
        "balance": balance,
    }
    frame = _frame(text, numbers, INVOICE_COLUMNS)
    held = _optional_amounts(label, raw, "held", exponents)
    if held is not None:
        frame["held"] = held
    return frame


def prepare_transactions(raw: pd.DataFrame | pa.Table, label: str = "transactions") -> pd.DataFrame:
    """Validate and type the bank, Stripe and GoCardless transactions."""
    cols = columns_of(raw, TRANSACTION_COLUMNS)
    _required(label, cols, ("transaction_id", "source", "booked_on", "amount", "currency"))
    _unique(label, cols, "transaction_id")
    source = _choice(label, cols, "source", SOURCES, canonical=False)
    currency = _currencies(label, cols)
    text = {
        "transaction_id": cols["transaction_id"],
        "source": source,
        "account_id": cols["account_id"],
        "currency": currency,
        "counterparty": cols["counterparty"],
        "reference": cols["reference"],
    }
    numbers: dict[str, npt.NDArray[np.generic]] = {
        "booked_on": _days(label, cols, "booked_on"),
        "amount": _amounts(label, cols, "amount", _exponents(currency)),
    }
    return _frame(text, numbers, TRANSACTION_COLUMNS)


def prepare_recorded(raw: pd.DataFrame | pa.Table, label: str = "recorded") -> pd.DataFrame:
    """Validate and type the payments WHMCS has recorded (its transactions table)."""
    cols = columns_of(raw, RECORDED_COLUMNS)
    _required(label, cols, ("whmcs_txn_id", "invoice_id", "recorded_on", "amount", "currency"))
    _unique(label, cols, "whmcs_txn_id")
    invoice_id = _whole_numbers(label, cols, "invoice_id", "a WHMCS invoice id (a whole number)")
    currency = _currencies(label, cols)
    exponents = _exponents(currency)
    fees_text = pc.utf8_trim_whitespace(cols["fees"])
    cols["fees"] = pc.if_else(pc.equal(fees_text, ""), "0", fees_text)
    text = {
        "whmcs_txn_id": cols["whmcs_txn_id"],
        "currency": currency,
        "gateway": pc.utf8_lower(pc.utf8_trim_whitespace(cols["gateway"])),
        "transid": pc.utf8_trim_whitespace(cols["transid"]),
    }
    numbers: dict[str, npt.NDArray[np.generic]] = {
        "invoice_id": invoice_id,
        "recorded_on": _days(label, cols, "recorded_on"),
        "amount": _amounts(label, cols, "amount", exponents),
        "fees": _amounts(label, cols, "fees", exponents),
    }
    return _frame(text, numbers, RECORDED_COLUMNS)


def prepare_payouts(raw: pd.DataFrame | pa.Table, label: str = "payouts") -> pd.DataFrame:
    """Validate and type the Stripe and GoCardless payouts."""
    cols = columns_of(raw, PAYOUT_COLUMNS)
    _required(label, cols, ("payout_id", "source", "arrival_on", "amount", "currency"))
    _unique(label, cols, "payout_id")
    source = _choice(label, cols, "source", ("stripe", "gocardless"), canonical=False)
    currency = _currencies(label, cols)
    text = {
        "payout_id": cols["payout_id"],
        "source": source,
        "currency": currency,
        "status": pc.utf8_lower(pc.utf8_trim_whitespace(cols["status"])),
    }
    numbers: dict[str, npt.NDArray[np.generic]] = {
        "arrival_on": _days(label, cols, "arrival_on"),
        "amount": _amounts(label, cols, "amount", _exponents(currency)),
    }
    return _frame(text, numbers, PAYOUT_COLUMNS)


def prepare_payout_lines(
    raw: pd.DataFrame | pa.Table, payouts: pd.DataFrame, label: str = "payout_lines"
) -> pd.DataFrame:
    """Validate the payout → transaction links against the payouts."""
    cols = columns_of(raw, PAYOUT_LINE_COLUMNS)
    _required(label, cols, ("payout_id", "transaction_id"))
    known = pc.is_in(cols["payout_id"], value_set=pa.array(payouts["payout_id"], type=_LS))
    position = _first(pc.invert(known))
    if position is not None:
        value = cols["payout_id"][position].as_py()
        raise _fail(label, position, "payout_id", value, "is not a payout")
    if len(pc.unique(cols["transaction_id"])) != len(cols["transaction_id"]):
        twice = pd.Series(cols["transaction_id"].to_numpy(zero_copy_only=False)).duplicated()
        position = int(np.flatnonzero(twice.to_numpy())[0])
        value = cols["transaction_id"][position].as_py()
        raise _fail(label, position, "transaction_id", value, "is listed in a payout already")
    return _frame(cols, {}, PAYOUT_LINE_COLUMNS)


def inputs_from_frames(
    invoices: pd.DataFrame | pa.Table,
    transactions: pd.DataFrame | pa.Table,
    recorded: pd.DataFrame | pa.Table | None = None,
    payouts: pd.DataFrame | pa.Table | None = None,
    payout_lines: pd.DataFrame | pa.Table | None = None,
    labels: dict[str, str] | None = None,
) -> MatchInputs:
    """Validate text frames in the §4.3 shapes (as read from files, or made by `connectors.sandbox.synth`)."""
    names = {
        "invoices": "invoices",
        "transactions": "transactions",
        "recorded": "recorded",
        "payouts": "payouts",
        "payout_lines": "payout_lines",
        **(labels or {}),
    }
    if (payouts is None) != (payout_lines is None):
        raise InputFileError("--payouts and --payout-lines go together; give both or neither.")
    # The files are checked side by side (Arrow kernels release the GIL); results are taken in
    # the order they were checked one after the other, so the error raised is the same one.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        invoices_job = pool.submit(prepare_invoices, invoices, names["invoices"])
        transactions_job = pool.submit(prepare_transactions, transactions, names["transactions"])
        recorded_job = (
            pool.submit(prepare_recorded, recorded, names["recorded"])
            if recorded is not None
            else None
        )
        typed_payouts = prepare_payouts(payouts, names["payouts"]) if payouts is not None else None
        lines = (
            prepare_payout_lines(payout_lines, typed_payouts, names["payout_lines"])
            if payout_lines is not None and typed_payouts is not None
            else empty_payout_lines()
        )
        return MatchInputs(
            invoices=invoices_job.result(),
            transactions=transactions_job.result(),
            recorded=recorded_job.result() if recorded_job is not None else empty_recorded(),
            payouts=typed_payouts if typed_payouts is not None else empty_payouts(),
            payout_lines=lines,
        )
