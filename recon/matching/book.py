"""The inputs as sorted arrays, the common ground of every stage of the engine.

Invoices are sorted by invoice id and transactions by (booking date, transaction id), so a
position is a stable key: "payment 17 comes before payment 18" is booking order, whatever order
the input rows came in. Currencies, statuses, sources and clients become small integer codes;
text stays in Arrow arrays (sorting, coding and joining text is done by Arrow kernels).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from recon.matching.config import MatchConfig
from recon.matching.frames import EXTRA_STATUSES, INVOICE_STATUSES, OPEN_STATUSES, MatchInputs
from recon.matching.names import NameKeys, name_keys
from recon.matching.numbering import number_formats
from recon.matching.references import InvoiceKeys, invoice_keys
from recon.matching.vec import KeyIndex, first_of_groups, lexsort
from recon.money import minor_exponent

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
Bools = npt.NDArray[np.bool_]
U64 = npt.NDArray[np.uint64]

BANK, STRIPE, GOCARDLESS = 0, 1, 2
SOURCES = ("bank", "stripe", "gocardless")
SOURCE_CODES = {name: code for code, name in enumerate(SOURCES)}
STATUSES = INVOICE_STATUSES + EXTRA_STATUSES
_LS = pa.large_string()
PAIR_MIX = np.uint64(0x9E3779B97F4A7C15)


def text(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    """Any text column as one contiguous Arrow large_string array, nulls as ""."""
    array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return pc.cast(array, _LS).fill_null("")


def codes(values: pa.Array, vocabulary: list[str] | tuple[str, ...]) -> I64:
    """Position of each value in a vocabulary (-1 where absent)."""
    found = pc.index_in(values, value_set=pa.array(list(vocabulary), type=_LS))
    return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def pair_key(client: I64, key: U64) -> U64:
    """One 64-bit value per (client, name key), for membership tests."""
    with np.errstate(over="ignore"):
        return (client.astype(np.uint64) + np.uint64(1)) * PAIR_MIX ^ key


@dataclass(frozen=True)
class Book:
    """Typed, sorted arrays of the invoices and transactions, plus lookup structures."""

    config: MatchConfig
    # the tenant's invoice number formats: configured, or learned from its invoice_num values
    number_formats: tuple[str, ...]
    currencies: list[str]
    exponent: I64
    fee_cap: I64
    # invoices, by invoice id
    inv_id: I64
    inv_client: I64
    inv_ccy: I64
    inv_issued: I32
    inv_due: I32
    inv_total: I64
    inv_balance: I64
    inv_status: I64
    inv_open_status: Bools
    inv_paid_status: Bools
    inv_num_key: I64
    by_client: I64  # invoice positions sorted by (client, due date, id)
    keys: InvoiceKeys
    # client name keys: (client, key) pairs for membership, and key → clients for joins
    client_pairs: KeyIndex
    client_pair_level: npt.NDArray[np.int8]
    name_index: KeyIndex
    key_client: I64
    key_level: npt.NDArray[np.int8]
    key_count: I64
    # transactions, in booking order (text columns in input order, see txn_row)
    txn_id: pa.Array
    txn_row: I64
    txn_position: I64
    txn_source: I64
    txn_booked: I32
    txn_amount: I64
    txn_ccy: I64
    counterparty: pa.Array
    reference: pa.Array
    provider_source: I64
    # positions of the transactions other inputs name: payout lines, recorded `transid`s
    # (aligned with those inputs' rows, -1 where not a transaction)
    line_txn: I64
    transid_txn: I64

    @property
    def provider_credit(self) -> Bools:
        """Bank credits that are a payment provider's payout, never a customer's payment."""
        return self.provider_source >= 0

    @property
    def n_invoices(self) -> int:
        """Number of invoices."""
        return len(self.inv_id)

    @property
    def n_transactions(self) -> int:
        """Number of transactions."""
        return len(self.txn_amount)

    def _rows(self, positions: npt.NDArray[np.integer]) -> pa.Array:
        return pa.array(self.txn_row[np.asarray(positions, dtype=np.int64)])

    def txn_ids(self, positions: npt.NDArray[np.integer]) -> pa.Array:
        """Transaction ids at positions."""
        return self.txn_id.take(self._rows(positions))

    def references(self, positions: npt.NDArray[np.integer]) -> pa.Array:
        """References of the transactions at positions."""
        return self.reference.take(self._rows(positions))

    def counterparties(self, positions: npt.NDArray[np.integer]) -> pa.Array:
        """Payer (or payee) names of the transactions at positions."""
        return self.counterparty.take(self._rows(positions))

    def txn_name(self, position: int) -> str:
        """One transaction id, for a message."""
        return str(self.txn_id[int(self.txn_row[int(position)])].as_py())

    def status_name(self, invoice: int) -> str:
        """The WHMCS status of one invoice, for a message."""
        return STATUSES[int(self.inv_status[invoice])]

    def txn_positions(self, ids: pa.Array | pd.Series) -> I64:
        """Positions of transaction ids in the book, -1 where unknown."""
        row = codes_in(text(ids), self.txn_id)
        found = np.full(len(row), -1, dtype=np.int64)
        found[row >= 0] = self.txn_position[row[row >= 0]]
        return found


def codes_in(values: pa.Array, value_set: pa.Array) -> I64:
    """Position of each value in an Arrow array of unique values (-1 where absent).

    The hash table is built on the smaller side: a few ids looked up among a million
    transactions scan the million once instead of hashing them.
    """
    if len(values) * 4 >= len(value_set):
        found = pc.index_in(values, value_set=value_set)
        return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    distinct = pc.unique(values)
    which = pc.index_in(value_set, value_set=distinct)
    which_np = which.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    seen = np.flatnonzero(which_np >= 0)
    position_of_distinct = np.full(len(distinct), -1, dtype=np.int64)
    position_of_distinct[which_np[seen][::-1]] = seen[::-1]
    code = pc.index_in(values, value_set=distinct).fill_null(-1)
    code_np = code.to_numpy(zero_copy_only=False).astype(np.int64)
    out = np.full(len(code_np), -1, dtype=np.int64)
    out[code_np >= 0] = position_of_distinct[code_np[code_np >= 0]]
    return out


def build_book(inputs: MatchInputs, config: MatchConfig) -> Book:
    """Sort, code and index the inputs.

    Text columns stay in input order (copying millions of strings into sorted order costs more
    than the lookups need); `txn_row` maps each position to its input row.
    """
    inv_frame = inputs.invoices
    inv_order = np.argsort(inv_frame["invoice_id"].to_numpy(dtype=np.int64), kind="stable")
    txn_frame = inputs.transactions
    booked = txn_frame["booked_on"].to_numpy(dtype=np.int32)
    txn_ids = text(txn_frame["transaction_id"])
    txn_order = (
        pc.sort_indices(
            pa.table({"booked": booked, "id": txn_ids}),
            sort_keys=[("booked", "ascending"), ("id", "ascending")],
        )
        .to_numpy()
        .astype(np.int64)
    )
    txn_position = np.empty(len(txn_order), dtype=np.int64)
    txn_position[txn_order] = np.arange(len(txn_order), dtype=np.int64)

    inv_currency = text(inv_frame["currency"])
    txn_currency = text(txn_frame["currency"])
    currencies = sorted(
        set(pc.unique(inv_currency).to_pylist())
        | set(pc.unique(txn_currency).to_pylist())
        | set(pc.unique(text(inputs.recorded["currency"])).to_pylist())
        | set(pc.unique(text(inputs.payouts["currency"])).to_pylist())
    )
    exponent = np.array([minor_exponent(c) for c in currencies], dtype=np.int64)
    fee_cap = np.array([config.fee_tolerance_minor(int(e)) for e in exponent], dtype=np.int64)
    inv_id = inv_frame["invoice_id"].to_numpy(dtype=np.int64)[inv_order]
    # clients coded in the order of their ids, whatever the order of the rows
    encoded = pc.dictionary_encode(text(inv_frame["client_id"]))
    rank = pc.rank(encoded.dictionary, sort_keys="ascending", tiebreaker="first")
    client_rank = rank.to_numpy().astype(np.int64) - 1
    inv_client = client_rank[encoded.indices.to_numpy(zero_copy_only=False)][inv_order]
    status = codes(text(inv_frame["status"]), STATUSES)[inv_order]
    due_on = inv_frame["due_on"].to_numpy(dtype=np.int32)[inv_order]
    open_codes = [STATUSES.index(s) for s in OPEN_STATUSES]
    invoice_num = text(inv_frame["invoice_num"]).take(pa.array(inv_order))
    counterparty = text(txn_frame["counterparty"])
    reference = text(txn_frame["reference"])
    source_by_row = codes(text(txn_frame["source"]), SOURCES)
    formats = number_formats(
        config.invoice_number_format,
        invoice_num,
        inv_frame["issued_on"].to_numpy(dtype=np.int32)[inv_order],
    )
    # three independent pieces of text work, side by side (Arrow kernels release the GIL)
    with ThreadPoolExecutor(max_workers=min(3, os.cpu_count() or 1)) as pool:
        keys_job = pool.submit(invoice_keys, inv_id, invoice_num, formats)
        names_job = pool.submit(
            _client_keys,
            text(inv_frame["client_name"]),
            text(inv_frame["company_name"]),
            inv_client,
            inv_order,
        )
        provider_job = pool.submit(_provider_source, source_by_row, counterparty, reference, config)
        keys = keys_job.result()
        client_keys, name_index = names_job.result()
        provider_source = provider_job.result()
    # one hash of the transaction ids serves the payout lines and the recorded transids
    named = pa.concat_arrays(
        [text(inputs.payout_lines["transaction_id"]), text(inputs.recorded["transid"])]
    )
    row = codes_in(named, txn_ids)
    found = np.full(len(row), -1, dtype=np.int64)
    found[row >= 0] = txn_position[row[row >= 0]]
    line_txn = found[: len(inputs.payout_lines)]
    transid_txn = found[len(inputs.payout_lines) :]
    num_key = np.full(len(inv_id), -1, dtype=np.int64)
    is_num = keys.kind == 1
    num_key[keys.invoice[is_num]] = keys.value[is_num]
    pairs = pair_key(client_keys.row, client_keys.key)
    return Book(
        config=config,
        number_formats=formats,
        currencies=currencies,
        exponent=exponent,
        fee_cap=fee_cap,
        inv_id=inv_id,
        inv_client=inv_client,
        inv_ccy=codes(inv_currency, currencies)[inv_order],
        inv_issued=inv_frame["issued_on"].to_numpy(dtype=np.int32)[inv_order],
        inv_due=due_on,
        inv_total=inv_frame["total"].to_numpy(dtype=np.int64)[inv_order],
        inv_balance=inv_frame["balance"].to_numpy(dtype=np.int64)[inv_order],
        inv_status=status,
        inv_open_status=np.isin(status, open_codes),
        inv_paid_status=status == STATUSES.index("Paid"),
        inv_num_key=num_key,
        by_client=lexsort((inv_id, due_on, inv_client)).astype(np.int64),
        keys=keys,
        client_pairs=KeyIndex.build(pairs),
        client_pair_level=client_keys.level,
        name_index=name_index,
        key_client=client_keys.row,
        key_level=client_keys.level,
        key_count=name_index.count(client_keys.key),
        txn_id=txn_ids,
        txn_row=txn_order,
        txn_position=txn_position,
        txn_source=source_by_row[txn_order],
        txn_booked=booked[txn_order],
        txn_amount=txn_frame["amount"].to_numpy(dtype=np.int64)[txn_order],
        txn_ccy=codes(txn_currency, currencies)[txn_order],
        counterparty=counterparty,
        reference=reference,
        provider_source=provider_source[txn_order],
        line_txn=line_txn,
        transid_txn=transid_txn,
    )


def _client_keys(
    client_name: pa.Array, company_name: pa.Array, inv_client: I64, inv_order: I64
) -> tuple[NameKeys, KeyIndex]:
    """Name keys of every client, from the names on its latest invoice, and the key index.

    Names are in input order; `inv_order` maps invoice positions to input rows.
    """
    n_clients = int(inv_client.max(initial=-1)) + 1
    latest = np.full(n_clients, -1, dtype=np.int64)
    np.maximum.at(latest, inv_client, np.arange(len(inv_client), dtype=np.int64))
    clients = np.arange(n_clients, dtype=np.int64)
    rows = pa.array(inv_order[latest])
    names = pa.concat_arrays([client_name.take(rows), company_name.take(rows)])
    owner = np.concatenate([clients, clients])
    # many clients have no company name: key only the names there are
    present = np.flatnonzero(pc.greater(pc.utf8_length(names), 0).to_numpy(zero_copy_only=False))
    found = name_keys(names.take(pa.array(present)))
    client = owner[present][found.row]
    # one row per (client, key): a client whose two names share a key counts once
    pairs = pair_key(client, found.key)
    order = lexsort((-found.level.astype(np.int64), pairs))
    first = first_of_groups(pairs[order])
    keep = order[first]
    keys = NameKeys(client[keep], found.key[keep], found.level[keep])
    return keys, KeyIndex.build(keys.key)


def _provider_source(
    source: I64, counterparty: pa.Array, reference: pa.Array, config: MatchConfig
) -> I64:
    """For bank credits that are payouts of Stripe, GoCardless, ...: which (else -1)."""
    out = np.full(len(source), -1, dtype=np.int64)
    bank = np.flatnonzero(source == BANK)
    if not len(bank):
        return out
    take = pa.array(bank)
    both = pc.binary_join_element_wise(
        counterparty.take(take), reference.take(take), pa.scalar(" ", _LS)
    )
    for name, pattern in sorted(config.payout_payer_patterns.items(), reverse=True):
        hit = pc.match_substring_regex(both, pattern, ignore_case=True)
        code = SOURCE_CODES.get(name, len(SOURCES))
        out[bank[hit.to_numpy(zero_copy_only=False).astype(bool)]] = code
    return out
