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

The reconcile step keeps the engine's payout ↔ bank credit links (`store_payout_matches`)
append-only, as allocations are: a changed link is a reversal row and a new row in `matches`,
an unchanged one writes nothing. `evidence_frame` gives the engine the stored money around a
window, read only, so that payouts and WHMCS payments near the window's edges are judged as
one run over both windows judges them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from recon import audit
from recon.canonical import STRIPE_TRANSACTIONS, Dataset, transaction_ref
from recon.db.models import Match, PayoutLine, Transaction
from recon.matching.frames import MatchResult
from recon.money import format_amount
from recon.review.ledger import unreversed
from tasks.decisions import ENGINE, key_of
from tasks.transids import engine_counterparty, engine_reference

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


# -- the engine's payout ↔ bank credit links, append-only -----------------------------------------

PAYOUT_BANK = "payout_bank"
_LINK_RULE = "payout_amount_date"


@dataclass(frozen=True)
class LinkChanges:
    """What storing the engine's payout links did."""

    added: int
    reversed: int


def _live_links(session: Session, payouts: list[str], credits: list[str]) -> dict[str, Match]:
    """Live engine payout links of these payouts or to these credits, by payout."""
    found: dict[str, Match] = {}
    for column, values in ((Match.left_ref, payouts), (Match.right_ref, credits)):
        for start in range(0, len(values), _CHUNK):
            statement = select(Match).where(
                Match.kind == PAYOUT_BANK,
                unreversed(Match),
                column.in_(values[start : start + _CHUNK]),
            )
            for match in session.scalars(statement):
                found[match.left_ref] = match
    return found


def _reverse_link(session: Session, original: Match, run_id: str, reason: str) -> None:
    reversal = Match(
        tenant_id=original.tenant_id,
        match_key=key_of(original.tenant_id, "reversal", original.match_key),
        run_id=run_id,
        kind=original.kind,
        left_ref=original.left_ref,
        right_ref=original.right_ref,
        rule=original.rule,
        confidence=original.confidence,
        amount_minor=None if original.amount_minor is None else -original.amount_minor,
        currency=original.currency,
        origin=original.origin,
        reverses_id=original.id,
        created_by=ENGINE,
    )
    session.add(reversal)
    session.flush()
    audit.append(
        session,
        actor=ENGINE,
        action="match.reversed",
        entity="match",
        entity_id=reversal.match_key,
        details={
            "run_id": run_id,
            "reason": reason,
            "reversal_id": reversal.id,
            "reverses_id": original.id,
            "reverses_key": original.match_key,
            "kind": original.kind,
            "payout_id": original.left_ref,
            "transaction_ref": original.right_ref,
            "amount_minor": original.amount_minor,
        },
    )


def _used_keys(session: Session, payouts: list[str]) -> set[str]:
    used: set[str] = set()
    for start in range(0, len(payouts), _CHUNK):
        used.update(
            session.scalars(
                select(Match.match_key).where(
                    Match.kind == PAYOUT_BANK, Match.left_ref.in_(payouts[start : start + _CHUNK])
                )
            )
        )
    return used


def _new_key(tenant_id: str, payout_id: str, used: set[str]) -> str:
    key, generation = key_of(tenant_id, PAYOUT_BANK, payout_id), 0
    while key in used:
        generation += 1
        key = key_of(tenant_id, PAYOUT_BANK, payout_id, generation)
    used.add(key)
    return key


def store_payout_matches(
    session: Session, tenant_id: str, run_id: str, result: MatchResult, window_refs: set[str]
) -> LinkChanges:
    """Append the engine's payout ↔ bank credit links.

    A live link of a proposed payout to another credit or amount is reversed and the new one
    appended; a live link to a credit this run decides (`window_refs`) that the engine no
    longer proposes is reversed; an unchanged link writes nothing. A credit outside the window
    (evidence) that another payout's live link holds keeps that link: the run that decided the
    credit decided it.
    """
    wanted = {
        str(row["payout_id"]): (str(row["transaction_id"]), int(row["amount"]))
        for row in result.payout_matches.to_dict("records")
    }
    credits = sorted(window_refs | {credit for credit, _ in wanted.values()})
    live = _live_links(session, sorted(wanted), credits)
    holder = {m.right_ref: payout for payout, m in live.items()}
    for payout_id, (credit, _) in list(wanted.items()):
        if credit not in window_refs and holder.get(credit, payout_id) != payout_id:
            del wanted[payout_id]  # the evidence credit is another payout's: its link stands
            live.pop(payout_id, None)
    added = reversed_count = 0
    used = _used_keys(session, sorted(wanted))
    for payout_id, match in sorted(live.items()):
        want = wanted.get(payout_id)
        if want == (match.right_ref, match.amount_minor):
            continue
        if want is None and match.right_ref not in window_refs:
            continue  # neither its payout's link nor its credit is decided here
        reason = "the engine no longer links it" if want is None else "replaced"
        _reverse_link(session, match, run_id, reason)
        reversed_count += 1
    for payout_id, (credit, amount) in sorted(wanted.items()):
        current = live.get(payout_id)
        if current is not None and (current.right_ref, current.amount_minor) == (credit, amount):
            continue
        session.add(
            Match(
                tenant_id=tenant_id,
                match_key=_new_key(tenant_id, payout_id, used),
                run_id=run_id,
                kind=PAYOUT_BANK,
                left_ref=payout_id,
                right_ref=credit,
                rule=_LINK_RULE,
                confidence=100,
                amount_minor=amount,
                origin=ENGINE,
                created_by=ENGINE,
            )
        )
        added += 1
    session.flush()
    return LinkChanges(added, reversed_count)


# -- money around a window, read only ---------------------------------------------------------------


def evidence_days(recorded_window_days: int, payout_margin_days: int) -> int:
    """How far around a window stored money is evidence: a WHMCS payment the window's frames
    hold (up to `recorded_window_days` outside it) needs that many days on its far side, and a
    payout (up to `payout_margin_days` outside) its credit's days."""
    return max(2 * recorded_window_days, 2 * payout_margin_days)


def evidence_frame(
    session: Session, window: tuple[dt.date, dt.date], decided: set[str], days: int
) -> pd.DataFrame:
    """Stored booked money within `days` of the window that this run does not decide (outside
    the window, or decided by people), as the engine's text transactions frame."""
    margin = dt.timedelta(days=days)
    statement = (
        select(Transaction)
        .where(
            Transaction.status == "booked",
            Transaction.booked_on >= window[0] - margin,
            Transaction.booked_on <= window[1] + margin,
        )
        .order_by(Transaction.source, Transaction.account_ref, Transaction.source_id)
    )
    rows = []
    for t in session.scalars(statement):
        ref = transaction_ref(t.source, t.account_ref, t.source_id)
        if ref in decided:
            continue
        rows.append(
            {
                "transaction_id": ref,
                "source": t.source,
                "account_id": t.account_ref,
                "booked_on": t.booked_on.isoformat(),
                "amount": format_amount(t.amount_minor, t.currency),
                "currency": t.currency,
                "counterparty": engine_counterparty(t),
                "reference": engine_reference(t),
            }
        )
    return pd.DataFrame(rows, columns=list(_EVIDENCE_COLUMNS), dtype="str")


_EVIDENCE_COLUMNS = ("transaction_id", "source", "account_id", "booked_on", "amount", "currency",
                     "counterparty", "reference")  # fmt: skip
