"""Lookups done once per run, whatever the open balances: numbers and names of the payments.

- every candidate invoice number in each reference, and the invoices whose keys equal them;
- the name keys of each payer, and the clients whose names share a key with the payer;
- for each (payment, referenced invoice): whether the payer is that invoice's client.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from recon.matching.book import Book, pair_key
from recon.matching.names import FULL, NameKeys, has_initial, name_keys
from recon.matching.references import RefNumbers, extract_numbers, join_keys
from recon.matching.vec import KeyIndex, csr, expand, first_of_groups, lexsort

I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
Bools = npt.NDArray[np.bool_]

# initials give weaker keys: looked for by name alone only when at most this many clients share
MAX_INITIAL_CLIENTS = 12
# beyond these, a key says nothing about which client paid (and would multiply rows)
LOOKUP_FULL_CLIENTS = 200
LOOKUP_INITIAL_CLIENTS = 12


@dataclass(frozen=True)
class Prepared:
    """Reference numbers, their key hits, and payer → client pairs."""

    refs: RefNumbers
    ref_start: I64
    ref_count: I64
    # reference numbers equal to an invoice key, sorted by payment
    join_p: I64
    join_i: I64
    join_kind: I8
    join_cut: Bools
    join_level: I64
    # payers whose name is a client's: (payment, client, level, clients sharing the key), and
    # whether the key is rare enough to go looking for the client's invoices by name alone
    name_p: I64
    name_client: I64
    name_level: I64
    name_kc: I64
    name_usable: Bools
    pair_index: KeyIndex
    joint: Bools  # per payment: the payer is a joint account (`A NOWAK U. J NOWAK`)
    abbreviated: Bools  # per payment: the payer's name has an initial (`E. LARSSON`)


def prepare(book: Book, payments: Bools) -> Prepared:
    """Extract reference numbers and payer name keys of the payments to place."""
    cfg = book.config
    n = book.n_transactions
    rows = np.flatnonzero(payments)
    found = extract_numbers(
        book.references(rows),
        book.number_formats,
        cfg.reference_cut_lengths,
        cfg.min_bare_digits,
    )
    refs = RefNumbers(rows[found.row], found.value, found.kind, found.digits, found.cut, found.ends)
    ref_start, ref_count = csr(refs.row, n)
    which, invoice = join_keys(refs, book.keys)
    order = lexsort((invoice, refs.row[which]))
    which, invoice = which[order], invoice[order]
    payer, joint_rows, abbreviated_rows = _payer_keys(book.counterparties(rows), rows)
    name_p, name_client, name_level, name_kc = _name_pairs(book, payer)
    joint = np.zeros(n, dtype=bool)
    joint[joint_rows] = True
    abbreviated = np.zeros(n, dtype=bool)
    abbreviated[abbreviated_rows] = True
    limit = np.where(name_level == FULL, cfg.name_max_clients_per_key, MAX_INITIAL_CLIENTS)
    pair_index = KeyIndex.build(pair_key(name_p, name_client.astype(np.uint64)))
    join_p = refs.row[which]
    return Prepared(
        refs=refs,
        ref_start=ref_start,
        ref_count=ref_count,
        join_p=join_p,
        join_i=invoice,
        join_kind=refs.kind[which],
        join_cut=refs.cut[which],
        join_level=_level(name_level, pair_index, join_p, book.inv_client[invoice]),
        name_p=name_p,
        name_client=name_client,
        name_level=name_level,
        name_kc=name_kc,
        name_usable=name_kc <= limit,
        pair_index=pair_index,
        joint=joint,
        abbreviated=abbreviated,
    )


def payer_level(prep: Prepared, p: I64, client: I64) -> I64:
    """Name level (2 full, 1 initials, 0 none) of each payment's payer against a client."""
    return _level(prep.name_level, prep.pair_index, p, client)


def _level(name_level: I64, pair_index: KeyIndex, p: I64, client: I64) -> I64:
    found, row = pair_index.lookup(pair_key(p, client.astype(np.uint64)))
    level = np.zeros(len(p), dtype=np.int64)
    level[found] = name_level[row]
    return level


def _payer_keys(counterparty: pa.Array, rows: I64) -> tuple[NameKeys, I64, I64]:
    """Name keys per payment, the payments from joint accounts and those whose payer's name
    has an initial; payers repeat, so each distinct name is keyed once."""
    encoded = pc.dictionary_encode(counterparty)
    code = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    keys, joint = _joint_keys(encoded.dictionary)
    by_row = np.argsort(keys.row, kind="stable")
    keys = NameKeys(keys.row[by_row], keys.key[by_row], keys.level[by_row])
    start, count = csr(keys.row, len(encoded.dictionary))
    which, slot = expand(start[code], count[code])  # `which` ascends, so payments do too
    is_joint = np.zeros(len(encoded.dictionary), dtype=bool)
    is_joint[joint] = True
    initial = has_initial(encoded.dictionary)
    return (
        NameKeys(rows[which], keys.key[slot], keys.level[slot]),
        rows[is_joint[code]],
        rows[initial[code]],
    )


_JOINT = r"(?i)\s+(?:U\.?|UND|AND|&|Y|E|ET|EN|OR|ODER|OU|\+)\s+"


# the lengths banks cut a payer's name to (MT940 lines of 27, SWIFT lines of 35, SEPA's 70)
_FIELD_LENGTHS = (27, 35, 70, 140)


def _cut_keys(names: pa.Array) -> NameKeys:
    """Keys of names the bank cut at its field length, without their last (maybe cut) word:
    `NetData Soluciones Unipesso` is `NetData Soluciones Unipessoal Lda.`"""
    lengths = pc.utf8_length(names).to_numpy(zero_copy_only=False)
    cut = np.flatnonzero(np.isin(lengths, _FIELD_LENGTHS))
    if not len(cut):
        return NameKeys(np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.int8))
    trimmed = pc.replace_substring_regex(
        names.take(pa.array(cut)), pattern=r"[\s,]+[^\s,]*$", replacement=""
    )
    keys = name_keys(trimmed)
    return NameKeys(cut[keys.row].astype(np.int64), keys.key, keys.level)


def _joint_keys(names: pa.Array) -> tuple[NameKeys, I64]:
    """Keys of each name, of a name cut at a bank's field length without its last word, and of
    each holder of a joint account (`A NOWAK U. J NOWAK`); and which names are joint accounts."""
    keys = name_keys(names)
    cut = _cut_keys(names)
    keys = NameKeys(
        np.concatenate([keys.row, cut.row]),
        np.concatenate([keys.key, cut.key]),
        np.concatenate([keys.level, cut.level]),
    )
    parts = pc.split_pattern_regex(names, pattern=_JOINT)
    lengths = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    joint = np.flatnonzero(lengths > 1)
    if not len(joint):
        return keys, joint.astype(np.int64)
    some = parts.take(pa.array(joint))
    flat = pc.list_flatten(some)
    parent = joint[pc.list_parent_indices(some).to_numpy().astype(np.int64)]
    more = name_keys(flat)
    return NameKeys(
        np.concatenate([keys.row, parent[more.row]]),
        np.concatenate([keys.key, more.key]),
        np.concatenate([keys.level, more.level]),
    ), joint.astype(np.int64)


def _name_pairs(book: Book, payer: NameKeys) -> tuple[I64, I64, I64, I64]:
    """(payment, client, level, clients sharing the key) for payers whose name is a client's.

    Keys shared by very many clients are left out (no evidence, and they would multiply rows).
    """
    limit = np.where(payer.level == FULL, LOOKUP_FULL_CLIENTS, LOOKUP_INITIAL_CLIENTS)
    which, slot = book.name_index.lookup(payer.key, limit)
    p = payer.row[which]
    client = book.key_client[slot]
    level = book.key_level[slot].astype(np.int64)
    kc = book.key_count[slot]
    # one pair per (payment, client): the best level, then the rarest key
    keep = _best_per_pair(p, client, level, kc)
    return p[keep], client[keep], level[keep], kc[keep]


def _best_per_pair(p: I64, client: I64, level: I64, kc: I64) -> I64:
    """Rows to keep, ascending: per (payment, client) the highest level, then the lowest kc,
    then the first row.

    One stable sort of a packed int64 key ((payment, client), level, kc) when it fits (three
    times faster than a three-key lexsort at a million payers); a lexsort otherwise.
    """
    if not len(p):
        return np.zeros(0, dtype=np.int64)
    n_clients = int(client.max()) + 1
    n_kc = int(kc.max()) + 1
    n_levels = int(level.max()) + 1
    span = (int(p.max()) + 1) * n_clients * n_levels * n_kc
    if span < 2**62 and int(level.min()) >= 0 and int(kc.min()) >= 0:
        pair = p * n_clients + client
        order = np.argsort((pair * n_levels + (n_levels - 1 - level)) * n_kc + kc, kind="stable")
        keep = order[first_of_groups(pair[order])]
    else:
        pairs = pair_key(p, client.astype(np.uint64))
        order = lexsort((kc, -level, pairs))
        keep = order[first_of_groups(pairs[order])]
    keep.sort()
    return np.asarray(keep, dtype=np.int64)
