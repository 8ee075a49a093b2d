"""Property tests (hypothesis): what is automated does not depend on names of things (issue 14).

Worlds of the independent generator (`bench.books2`, a few tenants with their own numbering,
languages and bank habits). For any renaming of the clients, any order of the rows, any
consistent rewriting of the tenant's invoice number prefix (invoices and references alike) and
any one-to-one change of currencies, the set of automatic allocations (payment, invoice, amount)
is the same. Unlike `test_match_invariance.py`, the renamings and orders are drawn by hypothesis.
"""

from __future__ import annotations

import functools
import random
import re

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.books2 import Books, generate_books
from recon.matching import MatchConfig, inputs_from_frames, match

# seed 2: one format `AE{NUMBER}`; seed 6: `INV-{YEAR}-{NUMBER}`; seed 3: `F{YEAR}{NUMBER}`
SEEDS = (2, 3, 6)
PREFIX = {2: "AE", 3: "F", 6: "INV-"}
CURRENCIES = ("EUR", "PLN", "CZK", "SEK", "CHF", "DKK", "NOK", "GBP", "USD", "AUD")
# two-letter words a reference reads as an invoice or client word, or that a reference may hold
# before digits already: a prefix spelled like one of them is not a mere renaming
_WORDS = {"RE", "RG", "NO", "NR", "KD", "ID", "AB", "AS", "SA", "SE", "EG", "AG", "KG", "UG", "EV"}

PROPERTY = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@functools.cache
def _books(seed: int) -> Books:
    return generate_books(seed, 900)


def _automated(
    invoices: pd.DataFrame, transactions: pd.DataFrame
) -> frozenset[tuple[str, int, int]]:
    result = match(inputs_from_frames(invoices, transactions), MatchConfig())
    auto = result.allocations[result.allocations["decision"] == "auto"]
    return frozenset(
        zip(
            auto["transaction_id"].astype(str),
            auto["invoice_id"].astype(int),
            auto["amount"].astype(int),
            strict=True,
        )
    )


@functools.cache
def _reference(seed: int) -> frozenset[tuple[str, int, int]]:
    books = _books(seed)
    found = _automated(books.invoices, books.transactions)
    assert len(found) > 150  # the property must see real automatic allocations
    return found


@given(seed=st.sampled_from(SEEDS), shuffle=st.randoms(use_true_random=False))
@PROPERTY
def test_renaming_clients_never_changes_what_is_automated(
    seed: int, shuffle: random.Random
) -> None:
    books = _books(seed)
    invoices = books.invoices.copy()
    ids = sorted(set(invoices["client_id"]), key=int)
    new_ids = [str(k) for k in shuffle.sample(range(1, 10 * len(ids)), len(ids))]
    invoices["client_id"] = invoices["client_id"].map(dict(zip(ids, new_ids, strict=True)))
    assert _automated(invoices, books.transactions) == _reference(seed)


@given(seed=st.sampled_from(SEEDS), shuffle=st.randoms(use_true_random=False))
@PROPERTY
def test_shuffling_rows_never_changes_what_is_automated(seed: int, shuffle: random.Random) -> None:
    books = _books(seed)
    inv_order = list(range(len(books.invoices)))
    txn_order = list(range(len(books.transactions)))
    shuffle.shuffle(inv_order)
    shuffle.shuffle(txn_order)
    invoices = books.invoices.iloc[inv_order].reset_index(drop=True)
    txns = books.transactions.iloc[txn_order].reset_index(drop=True)
    assert _automated(invoices, txns) == _reference(seed)


@given(
    seed=st.sampled_from(SEEDS),
    letters=st.text(alphabet="BCDHJKLMPQTVWXYZ", min_size=4, max_size=4),
)
@PROPERTY
def test_reformatting_invoice_numbers_never_changes_what_is_automated(
    seed: int, letters: str
) -> None:
    """The tenant's prefix rewritten to other letters of the same length, in the invoice
    numbers and wherever a reference quotes one (same length: a reference at a bank's cut
    length is read as possibly cut, so a longer prefix would move references across it)."""
    old = PREFIX[seed]
    new = letters[: len(old.rstrip("-"))] + ("-" if old.endswith("-") else "")
    if new.rstrip("-") in _WORDS:
        return
    books = _books(seed)
    invoices = books.invoices.copy()
    invoices["invoice_num"] = invoices["invoice_num"].str.replace(old, new, regex=False)
    # glued to other letters too (`NRAE01190`): the bank's text around it stays as it was
    quoted = re.compile(rf"(?i){re.escape(old)}(?=\d)")
    txns = books.transactions.copy()
    txns["reference"] = txns["reference"].map(lambda text: quoted.sub(new, text))
    assert _automated(invoices, txns) == _reference(seed)


@given(seed=st.sampled_from(SEEDS), shuffle=st.randoms(use_true_random=False))
@PROPERTY
def test_changing_currencies_never_changes_what_is_automated(
    seed: int, shuffle: random.Random
) -> None:
    books = _books(seed)
    swap = dict(zip(CURRENCIES, shuffle.sample(CURRENCIES, len(CURRENCIES)), strict=True))
    invoices = books.invoices.copy()
    txns = books.transactions.copy()
    invoices["currency"] = invoices["currency"].map(swap)
    txns["currency"] = txns["currency"].map(swap)
    assert _automated(invoices, txns) == _reference(seed)
