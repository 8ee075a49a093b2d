"""Validate and type the §4.3 inputs, column by column with Arrow kernels (no Python loop).

A bad value is an `InputFileError` whose message is one sentence naming the file, the row
(counting the header as row 1, as a spreadsheet does) and the column at fault.

Codes, dates and amounts repeat: those columns (`CODED_COLUMNS`) are checked and converted once
per distinct value, and each row takes its value through an index (the reader may hand them
over dictionary-encoded already). When a check fails, its row-by-row form runs on the rows' text
to find the first row at fault, so the message is the one a row-by-row check gives.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from recon.errors import InputFileError
from recon.matching.frames import (
    CODED_COLUMNS,
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
Bools = npt.NDArray[np.bool_]
Text: TypeAlias = "pa.Array | pa.ChunkedArray"
Prep: TypeAlias = "Callable[[Text], Text] | None"  # what is parsed, made from the text

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


def _first(mask: Text | Bools) -> int | None:
    values = mask if isinstance(mask, np.ndarray) else mask.to_numpy(zero_copy_only=False)
    hits = np.flatnonzero(values)
    return int(hits[0]) if len(hits) else None


def _np(array: Text) -> npt.NDArray[np.generic]:
    return np.asarray(array.to_numpy(zero_copy_only=False))


def _bools(array: Text) -> Bools:
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.bool_)


def _trim(values: Text) -> Text:
    return pc.utf8_trim_whitespace(values)


class Column:
    """One input column: its rows' text, and (on demand) its distinct values with each row's
    index into them. Nothing is copied until asked for."""

    def __init__(self, array: Text, coded: bool = False) -> None:
        self._array = array
        self.is_coded = coded or pa.types.is_dictionary(array.type)
        self._coded: tuple[pa.Array, I32] | None = None

    @property
    def text(self) -> Text:
        """Every row's text (large_string)."""
        if not pa.types.is_dictionary(self._array.type):
            return self._array
        return _decode(*self.coded())

    def coded(self) -> tuple[pa.Array, I32]:
        """The distinct values (large_string) and each row's index into them."""
        if self._coded is None:
            array = self._array
            if not pa.types.is_dictionary(array.type):
                array = pc.dictionary_encode(array)
            if isinstance(array, pa.ChunkedArray):  # one dictionary for all chunks
                array = array.unify_dictionaries().combine_chunks()
            index = np.asarray(_np(array.indices), dtype=np.int32)
            self._coded = (pc.cast(array.dictionary, _LS), index)
        return self._coded

    def first_row(self, bad: Bools) -> int | None:
        """The first row whose distinct value is flagged in `bad`."""
        if not bad.any():
            return None
        return _first(bad[self.coded()[1]])

    def value(self, position: int) -> object:
        """The text of one row."""
        if self._coded is None:
            return self.text[position].as_py()
        values, index = self._coded
        return values[int(index[position])].as_py()


Columns = dict[str, Column]


def columns_of(
    raw: pd.DataFrame | pa.Table | Mapping[str, pa.Array], names: Sequence[str]
) -> Columns:
    """The named columns as text ("" for missing values); dictionary-encoded ones stay so."""
    out: Columns = {}
    for name in names:
        if isinstance(raw, pa.Table):
            array = raw.column(name)
        elif isinstance(raw, pd.DataFrame):
            array = pa.array(raw[name], from_pandas=True)
        else:
            array = raw[name]
        if not (pa.types.is_dictionary(array.type) and array.null_count == 0):
            array = pc.cast(array, _LS)
            array = array.fill_null("") if array.null_count else array
        out[name] = Column(array, coded=name in CODED_COLUMNS)
    return out


def _blank(values: Text) -> Text:
    """Empty or only whitespace (what trimming leaves empty), without making trimmed copies."""
    return pc.or_(pc.equal(pc.binary_length(values), 0), pc.utf8_is_space(values))


def _required(label: str, cols: Columns, names: Sequence[str]) -> None:
    for name in names:
        column = cols[name]
        if column.is_coded:
            position = column.first_row(_bools(_blank(column.coded()[0])))
        else:
            position = _first(_blank(column.text))
        if position is not None:
            raise _fail(label, position, name, "", "is empty; a value is required")


def _currencies(label: str, cols: Columns) -> tuple[pa.Array, I32]:
    """The codes (upper case) of the distinct values, and each row's index into them."""
    column = cols["currency"]
    values, index = column.coded()
    codes = pc.utf8_upper(_trim(values))
    position = column.first_row(~_bools(pc.is_in(codes, value_set=_ISO)))
    if position is not None:
        reason = "is not an ISO 4217 currency code"
        raise _fail(label, position, "currency", column.value(position), reason)
    return codes, index


def _exponents(currency: tuple[pa.Array, I32]) -> I64:
    """Each row's minor-unit exponent."""
    codes, index = currency
    table = np.array([minor_exponent(str(c)) for c in codes.to_pylist()], dtype=np.int64)
    return table[index] if len(table) else np.zeros(len(index), dtype=np.int64)


def _decode(values: pa.Array, index: I32) -> pa.Array:
    return values.take(pa.array(index))


def _raise(label: str, column: str, failure: ParseFailure | None) -> None:
    if failure is not None:
        raise _fail(label, failure.position, column, failure.value, failure.reason)


def _amounts(label: str, column: Column, name: str, exponents: I64, prepare: Prep = None) -> I64:
    """Amounts in minor units; each distinct text is parsed once per exponent it is used with.

    `prepare` turns the text into what is parsed (as row by row); the first row at fault is
    found by parsing the rows' text when a distinct value fails."""
    values, index = column.coded()
    texts = prepare(values) if prepare is not None else values
    out = np.empty(len(index), dtype=np.int64)
    kinds = np.flatnonzero(np.bincount(exponents))  # exponents are 0 to 4
    for exp in kinds.tolist():
        if len(kinds) == 1:
            rows, entries = None, np.arange(len(texts))
        else:
            rows = exponents == exp
            used = np.zeros(len(texts), dtype=np.bool_)
            used[index[rows]] = True
            entries = np.flatnonzero(used)
        subset = texts if rows is None else texts.take(pa.array(entries))
        parsed, failure = parse_minor(subset, np.full(len(entries), exp, dtype=np.int64))
        if failure is not None:
            by_row, failure = parse_minor(_decode(texts, index), exponents)
            _raise(label, name, failure)
            return by_row
        table = np.zeros(len(texts), dtype=np.int64)
        table[entries] = parsed
        if rows is None:
            out = table[index]
        else:
            out[rows] = table[index[rows]]
    return out


def _days(label: str, column: Column, name: str) -> I32:
    values, index = column.coded()
    days, failure = parse_days(_trim(values))
    if failure is not None:
        by_row, failure = parse_days(_trim(_decode(values, index)))
        _raise(label, name, failure)
        return by_row
    return np.asarray(days[index], dtype=np.int32)


def _due_days(label: str, cols: Columns, issued: I32) -> I32:
    """`due_on`, or the issue date where it is empty."""
    column = cols["due_on"]
    values, index = column.coded()
    trimmed = _trim(values)
    empty = _bools(pc.equal(trimmed, ""))
    days, failure = parse_days(pc.if_else(pa.array(empty), "1970-01-01", trimmed))
    if failure is not None:
        due_text = _trim(column.text)
        text = pc.if_else(pc.equal(due_text, ""), cols["issued_on"].text, due_text)
        by_row, failure = parse_days(_trim(text))
        _raise(label, "due_on", failure)
        return by_row
    return np.where(empty[index], issued, days[index]).astype(np.int32)


def _whole_numbers(label: str, cols: Columns, name: str, what: str) -> I64:
    trimmed = _trim(cols[name].text)
    ok = pc.and_(pc.ascii_is_decimal(trimmed), pc.less_equal(pc.binary_length(trimmed), 18))
    position = _first(pc.invert(ok))  # as the pattern ^\d{1,18}$ (ASCII digits) would
    if position is not None:
        raise _fail(label, position, name, cols[name].value(position), f"is not {what}")
    return np.asarray(_np(pc.cast(trimmed, pa.int64())), dtype=np.int64)


def _repeated(values: Text) -> int | None:
    """The first row whose text an earlier row has, if any."""
    if len(pc.unique(values)) == len(values):
        return None
    return int(np.flatnonzero(pd.Series(_np(values)).duplicated().to_numpy())[0])


def _unique(label: str, cols: Columns, name: str, numbers: I64 | None = None) -> None:
    """No text twice. Where the rows' numbers are all different, so are their texts."""
    if numbers is not None and pd.Series(numbers, copy=False).is_unique:
        return
    position = _repeated(cols[name].text)
    if position is not None:
        raise _fail(label, position, name, cols[name].value(position), "appears twice")


def _choice(
    label: str, cols: Columns, name: str, allowed: Sequence[str], canonical: bool
) -> pa.Array:
    column = cols[name]
    values, index = column.coded()
    lowered = pc.utf8_lower(_trim(values))
    vocabulary = pa.array([value.lower() for value in allowed], type=_LS)
    code = pc.index_in(lowered, value_set=vocabulary)
    position = column.first_row(_bools(pc.is_null(code)))
    if position is not None:
        choices = ", ".join(allowed)
        raise _fail(label, position, name, column.value(position), f"is not one of {choices}")
    if not canonical:
        return _decode(lowered, index)
    return _decode(pa.array(list(allowed), type=_LS).take(code), index)


def _frame(
    text: Mapping[str, Text], numbers: Mapping[str, npt.NDArray[np.generic]], order: Sequence[str]
) -> pd.DataFrame:
    """A typed frame: text columns stay Arrow-backed (pandas `str`), numbers are numpy; no copy."""
    columns: dict[str, object] = {}
    for name in order:
        if name in text:
            columns[name] = text[name].to_pandas()
        else:
            columns[name] = numbers[name]
    return pd.DataFrame(columns, copy=False)


def _optional_amounts(
    label: str, raw: pd.DataFrame | pa.Table, name: str, exponents: I64
) -> I64 | None:
    """An optional, non-negative amount column (empty means zero); None when it is absent."""
    present = raw.column_names if isinstance(raw, pa.Table) else list(raw.columns)
    if name not in present:
        return None
    column = columns_of(raw, (name,))[name]
    values = _amounts(label, column, name, exponents, _zero_if_empty)
    position = _first(values < 0)
    if position is not None:
        shown = _zero_if_empty(pa.array([column.value(position)], type=_LS))[0].as_py()
        raise _fail(label, position, name, shown, "is negative")
    return values


def _zero_if_empty(values: Text) -> Text:
    trimmed = _trim(values)
    return pc.if_else(pc.equal(trimmed, ""), "0", trimmed)


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
    _unique(label, cols, "invoice_id", invoice_id)
    currency = _currencies(label, cols)
    exponents = _exponents(currency)
    issued = _days(label, cols["issued_on"], "issued_on")
    due = _due_days(label, cols, issued)
    total = _amounts(label, cols["total"], "total", exponents)
    balance = _amounts(label, cols["balance"], "balance", exponents)
    for name, values in (("total", total), ("balance", balance)):
        position = _first(values < 0)
        if position is not None:
            raise _fail(label, position, name, cols[name].value(position), "is negative")
    status = _choice(label, cols, "status", INVOICE_STATUSES + EXTRA_STATUSES, canonical=True)
    text = {
        "invoice_num": _trim(cols["invoice_num"].text),
        "client_id": _trim(cols["client_id"].text),
        "client_name": cols["client_name"].text,
        "company_name": cols["company_name"].text,
        "currency": _decode(*currency),
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
        "transaction_id": cols["transaction_id"].text,
        "source": source,
        "account_id": cols["account_id"].text,
        "currency": _decode(*currency),
        "counterparty": cols["counterparty"].text,
        "reference": cols["reference"].text,
    }
    numbers: dict[str, npt.NDArray[np.generic]] = {
        "booked_on": _days(label, cols["booked_on"], "booked_on"),
        "amount": _amounts(label, cols["amount"], "amount", _exponents(currency)),
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
    gateway_values, gateway_index = cols["gateway"].coded()
    text = {
        "whmcs_txn_id": cols["whmcs_txn_id"].text,
        "currency": _decode(*currency),
        "gateway": _decode(pc.utf8_lower(_trim(gateway_values)), gateway_index),
        "transid": _trim(cols["transid"].text),
    }
    numbers: dict[str, npt.NDArray[np.generic]] = {
        "invoice_id": invoice_id,
        "recorded_on": _days(label, cols["recorded_on"], "recorded_on"),
        "amount": _amounts(label, cols["amount"], "amount", exponents),
        "fees": _amounts(label, cols["fees"], "fees", exponents, _zero_if_empty),
    }
    return _frame(text, numbers, RECORDED_COLUMNS)


def prepare_payouts(raw: pd.DataFrame | pa.Table, label: str = "payouts") -> pd.DataFrame:
    """Validate and type the Stripe and GoCardless payouts."""
    cols = columns_of(raw, PAYOUT_COLUMNS)
    _required(label, cols, ("payout_id", "source", "arrival_on", "amount", "currency"))
    _unique(label, cols, "payout_id")
    source = _choice(label, cols, "source", ("stripe", "gocardless"), canonical=False)
    currency = _currencies(label, cols)
    status_values, status_index = cols["status"].coded()
    text = {
        "payout_id": cols["payout_id"].text,
        "source": source,
        "currency": _decode(*currency),
        "status": _decode(pc.utf8_lower(_trim(status_values)), status_index),
    }
    numbers: dict[str, npt.NDArray[np.generic]] = {
        "arrival_on": _days(label, cols["arrival_on"], "arrival_on"),
        "amount": _amounts(label, cols["amount"], "amount", _exponents(currency)),
    }
    return _frame(text, numbers, PAYOUT_COLUMNS)


def prepare_payout_lines(
    raw: pd.DataFrame | pa.Table, payouts: pd.DataFrame, label: str = "payout_lines"
) -> pd.DataFrame:
    """Validate the payout → transaction links against the payouts."""
    cols = columns_of(raw, PAYOUT_LINE_COLUMNS)
    _required(label, cols, ("payout_id", "transaction_id"))
    payout_id, transaction_id = cols["payout_id"].text, cols["transaction_id"].text
    known = pc.is_in(payout_id, value_set=pa.array(payouts["payout_id"], type=_LS))
    position = _first(pc.invert(known))
    if position is not None:
        raise _fail(label, position, "payout_id", payout_id[position].as_py(), "is not a payout")
    position = _repeated(transaction_id)
    if position is not None:
        value = transaction_id[position].as_py()
        raise _fail(label, position, "transaction_id", value, "is listed in a payout already")
    return _frame(
        {"payout_id": payout_id, "transaction_id": transaction_id}, {}, PAYOUT_LINE_COLUMNS
    )


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
