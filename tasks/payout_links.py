"""Payouts that arrive in a later window than the transactions they pay out.

A Stripe charge booked in one window is often paid out by a payout created in the next: the
first window loads the charge with no `payout_id`, the second loads the payout and its
PAYOUT_LINES. The loader (`tasks.load.load_batch_in`) keeps the two in step, in the same
transaction as the load and whichever window comes first:

* `with_stored_payouts`: a transaction row about to load without a payout takes the payout a
  stored payout line gives it, so re-loading the earlier window yields the row as stored (its
  content hash unchanged) instead of setting the payout back to nothing;
* `unlinked_rows`: after payout lines load, the stored transactions they name that still have no
  payout come back as canonical rows with the payout filled, for the loader to upsert (content
  hash and conservation included).

Only sources whose payout lines name transactions by their loaded `source_id` take part
(`LINKED`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from recon.canonical import STRIPE_TRANSACTIONS, Dataset
from recon.db.models import PayoutLine, Transaction

LINKED: dict[str, Dataset] = {"stripe": STRIPE_TRANSACTIONS}
"""Source -> the dataset its transaction rows load as (so a re-built row hashes the same)."""
_CHUNK = 400


def _stored_lines(session: Session, tenant_id: str, source: str, ids: list[str]) -> dict[str, str]:
    """transaction id -> payout id, from the stored payout lines of `source`."""
    found: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):
        statement = select(PayoutLine.transaction_id, PayoutLine.payout_id).where(
            PayoutLine.tenant_id == tenant_id,
            PayoutLine.source == source,
            PayoutLine.transaction_id.in_(ids[start : start + _CHUNK]),
        )
        for transaction_id, payout_id in session.execute(statement):
            found.setdefault(transaction_id, payout_id)
    return found


def with_stored_payouts(
    session: Session, tenant_id: str, dataset: Dataset, rows: pd.DataFrame
) -> pd.DataFrame:
    """`rows` (a transactions frame) with `payout_id` filled from stored payout lines where a
    row of a `LINKED` source has none; other frames are returned as they are."""
    if dataset.name != "transactions" or rows.empty or "payout_id" not in rows.columns:
        return rows
    missing = rows["payout_id"].isna() & rows["source"].isin(list(LINKED))
    if not missing.any():
        return rows
    filled = rows.copy()
    for source in sorted(set(filled.loc[missing, "source"])):
        mine = missing & (filled["source"] == source)
        found = _stored_lines(session, tenant_id, source, list(filled.loc[mine, "source_id"]))
        if found:
            filled.loc[mine, "payout_id"] = [found.get(i) for i in filled.loc[mine, "source_id"]]
    return filled


def unlinked_rows(
    session: Session, tenant_id: str, dataset: Dataset, rows: pd.DataFrame
) -> list[tuple[str, Dataset, pd.DataFrame]]:
    """For a payout lines frame just loaded: per `LINKED` source, the stored transactions its
    lines name that have no payout yet, as (source, dataset, rows with the payout filled)."""
    if dataset.name != "payout_lines" or rows.empty:
        return []
    result: list[tuple[str, Dataset, pd.DataFrame]] = []
    for source, linked in LINKED.items():
        lines = rows[rows["source"] == source]
        payout_of = dict(
            zip(lines["transaction_id"].astype(str), lines["payout_id"].astype(str), strict=True)
        )
        ids = sorted(payout_of)
        records: list[dict[str, Any]] = []
        for start in range(0, len(ids), _CHUNK):
            statement = select(Transaction).where(
                Transaction.tenant_id == tenant_id,
                Transaction.source == source,
                Transaction.source_id.in_(ids[start : start + _CHUNK]),
                Transaction.payout_id.is_(None),
            )
            for stored in session.scalars(statement):
                record = {c: getattr(stored, c) for c in linked.columns}
                record["payout_id"] = payout_of[stored.source_id]
                record["raw_payload_id"] = stored.raw_payload_id
                records.append(record)
        if records:
            columns = [*linked.columns, "raw_payload_id"]
            result.append((source, linked, pd.DataFrame(records, columns=columns)))
    return result
