"""The state after applying a result: what WHMCS looks like once the auto allocations are in.

Each allocation that may be written back (`recon.writeback.may_write_back`: automatic, and not a
`recorded_*` confirmation of a payment WHMCS already has) becomes a recorded payment whose
`transid` is the transaction id, as `AddInvoicePayment` would record it, and lowers the invoice's balance; an invoice paid in full becomes `Paid`. Matching the new state
with the same transactions must add nothing: that is the engine's idempotence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recon.matching.audit import CONFIRMATIONS
from recon.matching.frames import OPEN_STATUSES, MatchInputs, MatchResult
from recon.matching.rules import RULES
from recon.writeback import CONFIRMING_PREFIX, may_write_back

__all__ = ["CONFIRMING_PREFIX", "applied", "apply_result", "engine_rules"]

GATEWAY_OF_SOURCE = {"bank": "banktransfer", "stripe": "stripe", "gocardless": "gocardless"}


def engine_rules() -> tuple[str, ...]:
    """Every rule name the engine can put on an allocation: its matching rules, then the
    confirmations of payments WHMCS records."""
    return tuple(rule.name for rule in RULES) + tuple(CONFIRMATIONS)


def applied(result: MatchResult) -> pd.DataFrame:
    """The allocations that would be written to WHMCS (`may_write_back`)."""
    a = result.allocations
    verdict = {
        (rule, decision): may_write_back(rule, decision)
        for rule, decision in a[["rule", "decision"]].drop_duplicates().itertuples(index=False)
    }
    keep = [verdict[pair] for pair in zip(a["rule"], a["decision"], strict=True)]
    return a[np.asarray(keep, dtype=bool)].reset_index(drop=True)


def apply_result(inputs: MatchInputs, result: MatchResult) -> MatchInputs:
    """The inputs as they are after the result's automatic allocations were applied."""
    new = applied(result)
    paid = new.groupby("invoice_id")["amount"].sum()
    invoices = inputs.invoices.copy()
    reduction = invoices["invoice_id"].map(paid).fillna(0).to_numpy(dtype=np.int64)
    balance = invoices["balance"].to_numpy(dtype=np.int64) - reduction
    if (balance < 0).any():
        raise ValueError("allocations exceed an invoice's balance")
    settled = (reduction > 0) & (balance == 0) & invoices["status"].isin(OPEN_STATUSES).to_numpy()
    invoices["balance"] = balance
    invoices["status"] = invoices["status"].where(~settled, "Paid").astype("str")
    txn = inputs.transactions.set_index("transaction_id")
    booked = txn.loc[new["transaction_id"], "booked_on"].to_numpy(dtype=np.int32)
    source = txn.loc[new["transaction_id"], "source"].to_numpy(dtype=object)
    rows = pd.DataFrame(
        {
            "whmcs_txn_id": pd.Series(
                [
                    f"applied:{t}:{i}"
                    for t, i in zip(new["transaction_id"], new["invoice_id"], strict=True)
                ],
                dtype="str",
            ),
            "invoice_id": new["invoice_id"].to_numpy(dtype=np.int64),
            "recorded_on": booked,
            "amount": new["amount"].to_numpy(dtype=np.int64),
            "fees": np.zeros(len(new), dtype=np.int64),
            "currency": new["currency"].astype("str"),
            "gateway": pd.Series([GATEWAY_OF_SOURCE[s] for s in source], dtype="str"),
            "transid": new["transaction_id"].astype("str"),
        }
    )
    recorded = pd.concat([inputs.recorded, rows], ignore_index=True)
    return MatchInputs(
        invoices=invoices,
        transactions=inputs.transactions,
        recorded=recorded,
        payouts=inputs.payouts,
        payout_lines=inputs.payout_lines,
    )
