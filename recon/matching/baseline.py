"""A plain matcher to compare against: exact reference join plus equal amount.

Every run of digits in a reference (and every whitespace-separated word equal to an invoice
number) is joined to the invoices; a payment is allocated when exactly one open invoice of its
currency is named and its balance equals the payment. Nothing else: no labels, decoys, typos,
names, sums, fees or recorded payments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from recon.matching.book import text
from recon.matching.frames import OPEN_STATUSES, MatchInputs


def plain_match(inputs: MatchInputs) -> pd.DataFrame:
    """Allocations (transaction_id, invoice_id, amount, currency, rule, confidence, decision)."""
    inv = inputs.invoices
    txn = inputs.transactions
    incoming = np.flatnonzero(txn["amount"].to_numpy() > 0)
    refs = text(txn["reference"]).take(pa.array(incoming))
    words = pc.split_pattern_regex(refs, pattern=r"\s+")
    flat = pc.list_flatten(words)
    parent = incoming[pc.list_parent_indices(words).to_numpy()]
    digits = pc.split_pattern_regex(flat, pattern=r"\D+")
    digit_flat = pc.list_flatten(digits)
    digit_parent = parent[pc.list_parent_indices(digits).to_numpy()]
    numeric = pc.match_substring_regex(digit_flat, r"^\d{1,18}$").to_numpy(zero_copy_only=False)
    by_id = pd.DataFrame(
        {
            "row": digit_parent[numeric],
            "invoice_id": pc.cast(digit_flat.filter(pa.array(numeric)), pa.int64()).to_numpy(),
        }
    )
    nums = inv.loc[inv["invoice_num"] != "", ["invoice_id", "invoice_num"]]
    by_num = pd.DataFrame({"row": parent, "invoice_num": flat.to_pandas()}).merge(
        nums, on="invoice_num"
    )[["row", "invoice_id"]]
    named = pd.concat([by_id, by_num], ignore_index=True).drop_duplicates()
    open_invoices = inv[inv["status"].isin(OPEN_STATUSES) & (inv["balance"] > 0)]
    candidates = named.merge(
        open_invoices[["invoice_id", "balance", "currency"]], on="invoice_id", how="inner"
    )
    candidates = candidates[candidates.groupby("row")["invoice_id"].transform("size") == 1]
    rows = candidates["row"].to_numpy()
    same = (candidates["currency"].to_numpy() == txn["currency"].to_numpy()[rows]) & (
        candidates["balance"].to_numpy() == txn["amount"].to_numpy()[rows]
    )
    chosen = candidates[same]
    rows = chosen["row"].to_numpy()
    out = pd.DataFrame(
        {
            "transaction_id": txn["transaction_id"].to_numpy()[rows],
            "invoice_id": chosen["invoice_id"].to_numpy(dtype=np.int64),
            "amount": txn["amount"].to_numpy()[rows],
            "currency": txn["currency"].to_numpy()[rows],
            "rule": "baseline_exact",
            "confidence": 100,
            "decision": "auto",
        }
    )
    # one invoice is settled once: the first payment (booking order) keeps it
    out["booked_on"] = txn["booked_on"].to_numpy()[rows]
    out = out.sort_values(["booked_on", "transaction_id"], kind="stable")
    out = out.drop_duplicates("invoice_id").drop(columns="booked_on")
    return out.sort_values(["transaction_id", "invoice_id"], kind="stable", ignore_index=True)
