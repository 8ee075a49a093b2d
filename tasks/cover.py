"""Judgements about payouts that wait until the stored fetches hold the days they need.

The engine judges "no payout for this bank credit" (`unmatched_payment`, `NO_PAYOUT_RECORD`)
from the payouts it is given, and "payout without bank credit" (`payout_missing`) from the days
its bank money spans. Both are premature when the days they need were never fetched (a gap in
what is stored, or the far side of a window's edge): a payout created the day after the window
is not stored yet, and a bank credit booked in a gap between two stored windows is not known.

`wait_for_cover` holds such a judgement back: the exception is not raised, an open one is
neither changed nor closed, and the run's stats count it (`credits_waiting_for_cover`,
`payouts_waiting_for_cover`). It is raised by the first run that has the days:

* a waiting payout is judged again by every run whose payouts it reads (the payouts around
  its window), so the run that holds its bank days raises it, or finds its credit;
* a waiting credit may lie outside the window of the run that has its payout days (the engine
  never raises on evidence): that run raises it here, with the engine's own wording, when no
  payout it reads is linked to it, no live link holds it and no person allocated it;
* a credit outside the window that this run links to its payout short of the payout's amount
  gets its `payout_shortfall` here (the run that had the credit may not have had the payout).

A day is held for a provider's dataset when a complete stored fetch of every account of it
holds the day. A provider with no stored fetch at all (books loaded without the pipeline) is not
judged here: the engine's own judgement stands.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, replace

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from recon.db.models import Allocation, Match, RawFetch
from recon.matching.config import MatchConfig
from recon.matching.frames import MatchResult
from recon.money import format_amount, to_minor
from recon.review.ledger import live_allocations, unreversed
from tasks.payout_links import PAYOUT_BANK

Fetch = tuple[str, str]
"""(provider, dataset) of stored fetches."""
Days = tuple[dt.date, dt.date]

BANK_FETCH: Fetch = ("gocardless", "transactions")
PAYOUT_FETCHES: dict[str, Fetch] = {
    "stripe": ("stripe", "activity"),
    "gocardless": ("gocardless_payments", "activity"),
}
"""The engine's payout source -> the stored fetches its payouts come from."""
NO_PAYOUT_RECORD = "a payment provider's payout with no matching payout record"
"""The engine's detail of a provider's bank credit that no payout explains."""
_CHUNK = 400


@dataclass(frozen=True)
class StoredCover:
    """The windows of the complete stored fetches, per (provider, dataset) and account."""

    spans: dict[Fetch, dict[str, list[Days]]]

    def known(self, fetch: Fetch) -> bool:
        """Whether anything of `fetch` was ever stored (else it is not judged here)."""
        return bool(self.spans.get(fetch))

    def holds(self, fetch: Fetch, days: Days) -> bool:
        """Whether every account of `fetch` has every day of `days` in a complete fetch; True
        for a fetch never stored (the engine's own judgement stands)."""
        accounts = self.spans.get(fetch)
        if not accounts:
            return True
        count = (days[1] - days[0]).days + 1
        wanted = [days[0] + dt.timedelta(days=n) for n in range(count)]
        return all(
            any(first <= day <= last for first, last in spans)
            for spans in accounts.values()
            for day in wanted
        )


def stored_cover(session: Session) -> StoredCover:
    """The session's tenant's complete stored fetches."""
    spans: dict[Fetch, dict[str, list[Days]]] = defaultdict(lambda: defaultdict(list))
    rows = session.execute(
        select(
            RawFetch.provider,
            RawFetch.dataset,
            RawFetch.account_ref,
            RawFetch.window_from,
            RawFetch.window_to,
        ).where(RawFetch.completed_at.is_not(None))
    )
    for provider, dataset, account, first, last in rows:
        spans[(provider, dataset)][account].append((first, last))
    return StoredCover({fetch: dict(accounts) for fetch, accounts in spans.items()})


@dataclass(frozen=True)
class Waiting:
    """What this run's judgements wait for: payouts (`payout_missing`) and bank credits (no
    payout record) whose days the stored fetches do not hold yet."""

    payouts: frozenset[str]
    credits: frozenset[str]


def payout_source(counterparty: str, reference: str, config: MatchConfig) -> str | None:
    """The payout source a bank credit's payer or reference names (as the engine reads it:
    `payout_payer_patterns`, case-insensitive, the alphabetically first source winning)."""
    both = f"{counterparty} {reference}"
    found = None
    for name, pattern in sorted(config.payout_payer_patterns.items(), reverse=True):
        if re.search(pattern, both, flags=re.IGNORECASE):
            found = name
    return found


def _payout_fetches(source: str | None) -> list[Fetch]:
    return [PAYOUT_FETCHES[source]] if source in PAYOUT_FETCHES else list(PAYOUT_FETCHES.values())


def _day(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


def _payout_days(booked: dt.date, config: MatchConfig) -> Days:
    """The arrival days of the payouts a credit booked on `booked` may belong to."""
    return (
        booked - dt.timedelta(days=config.payout_days_after),
        booked + dt.timedelta(days=config.payout_days_before),
    )


def _held_credits(session: Session, refs: list[str]) -> set[str]:
    """Credits a live payout link or a live allocation holds."""
    held: set[str] = set()
    for start in range(0, len(refs), _CHUNK):
        part = refs[start : start + _CHUNK]
        held.update(
            session.scalars(
                select(Match.right_ref).where(
                    Match.kind == PAYOUT_BANK, unreversed(Match), Match.right_ref.in_(part)
                )
            )
        )
        held |= {
            a.transaction_ref
            for a in live_allocations(session, Allocation.transaction_ref.in_(part))
        }
    return held


def _evidence_credits(
    session: Session,
    result: MatchResult,
    evidence: pd.DataFrame,
    cover: StoredCover,
    config: MatchConfig,
    payouts_read: Days,
) -> list[dict[str, object]]:
    """Exceptions for provider credits outside the window that this run can judge and the
    engine did not (it never raises on evidence): their payout days are all stored and among
    the payouts this run read, and nothing links or allocates them."""
    linked = set(result.payout_matches["transaction_id"].astype(str))
    found: list[dict[str, object]] = []
    for row in evidence.to_dict("records"):
        amount = to_minor(str(row["amount"]), str(row["currency"]))
        if row["source"] != "bank" or amount <= 0 or row["transaction_id"] in linked:
            continue
        source = payout_source(str(row["counterparty"]), str(row["reference"]), config)
        if source is None:
            continue
        days = _payout_days(_day(str(row["booked_on"])), config)
        fetches = _payout_fetches(source)
        if not all(cover.known(f) and cover.holds(f, days) for f in fetches):
            continue
        if not (payouts_read[0] <= days[0] and days[1] <= payouts_read[1]):
            continue
        found.append(
            {"kind": "unmatched_payment", "transaction_id": str(row["transaction_id"]),
             "invoice_id": 0, "amount": amount, "currency": str(row["currency"]),
             "detail": NO_PAYOUT_RECORD, "subject": ""}
        )  # fmt: skip
    if not found:
        return []
    held = _held_credits(session, sorted(str(r["transaction_id"]) for r in found))
    return [r for r in found if r["transaction_id"] not in held]


def _evidence_shortfalls(
    result: MatchResult, frames: dict[str, pd.DataFrame]
) -> list[dict[str, object]]:
    """Short credits outside the window that this run linked to their payout. The engine raises
    a shortfall only on its window's credits, but the run that had the credit may not have had
    its payout yet; one run over both windows raises it, so this run does, in the engine's words
    (the same key as the engine's own, so a shortfall raised before changes nothing)."""
    evidence = frames.get("evidence")
    matches = result.payout_matches
    if evidence is None or evidence.empty or matches.empty:
        return []
    outside = set(evidence["transaction_id"].astype(str))
    currency_of = dict(
        zip(frames["payouts"]["payout_id"], frames["payouts"]["currency"], strict=True)
    )
    found: list[dict[str, object]] = []
    for payout_id, ref, credit, short in zip(
        matches["payout_id"].astype(str), matches["transaction_id"].astype(str),
        matches["amount"], matches["shortfall"], strict=True,
    ):  # fmt: skip
        total = int(credit) + int(short)
        if ref not in outside or int(short) <= 0 or total <= 0:
            continue
        currency = str(currency_of[payout_id])

        def money(minor: int, currency: str = currency) -> str:
            return f"{format_amount(minor, currency)} {currency}"

        found.append(
            {"kind": "payout_shortfall", "transaction_id": ref, "invoice_id": 0,
             "amount": int(short), "currency": currency, "subject": "",
             "detail": f"payout {payout_id} of {money(total)} arrived as {money(int(credit))}: "
                       f"{money(int(short))} short"}
        )  # fmt: skip
    return found


def wait_for_cover(
    session: Session,
    result: MatchResult,
    frames: dict[str, pd.DataFrame],
    config: MatchConfig,
    payouts_read: Days,
) -> tuple[MatchResult, Waiting]:
    """The engine's result with its payout judgements held back where the stored fetches do
    not hold the days they need, and the evidence credits it can now judge raised; and what
    waits. `payouts_read` is the range of arrival days of the payouts given to the engine."""
    cover = stored_cover(session)
    e = result.exceptions
    arrival = dict(
        zip(frames["payouts"]["payout_id"], frames["payouts"]["arrival_on"], strict=True)
    )
    txn = frames["transactions"].set_index("transaction_id")
    waiting_payouts: set[str] = set()
    waiting_credits: set[str] = set()
    keep: list[bool] = []
    for kind, ref, subject, detail in zip(
        e["kind"].astype(str), e["transaction_id"].astype(str), e["subject"].astype(str),
        e["detail"].astype(str), strict=True,
    ):  # fmt: skip
        wait = False
        if kind == "payout_missing" and subject in arrival:
            day = _day(arrival[subject])
            bank_days = (
                day - dt.timedelta(days=config.payout_days_before),
                day + dt.timedelta(days=config.payout_days_after),
            )
            wait = not cover.holds(BANK_FETCH, bank_days)
            if wait:
                waiting_payouts.add(subject)
        elif kind == "unmatched_payment" and detail == NO_PAYOUT_RECORD and ref in txn.index:
            row = txn.loc[ref]
            source = payout_source(str(row["counterparty"]), str(row["reference"]), config)
            days = _payout_days(_day(str(row["booked_on"])), config)
            wait = not all(cover.holds(f, days) for f in _payout_fetches(source))
            if wait:
                waiting_credits.add(ref)
        keep.append(not wait)
    exceptions = e[keep].reset_index(drop=True) if not all(keep) else e
    raised = _evidence_credits(
        session, result, frames.get("evidence", pd.DataFrame()), cover, config, payouts_read
    )
    short = _evidence_shortfalls(result, frames)
    raised += short
    if raised:
        extra = pd.DataFrame(raised, columns=list(e.columns)).astype(e.dtypes.to_dict())
        exceptions = pd.concat([exceptions, extra], ignore_index=True)
    judged = result.judged
    if waiting_payouts:
        out = (judged["kind"] == "payout_missing") & judged["subject"].isin(waiting_payouts)
        judged = judged[~out].reset_index(drop=True)
    stats = {
        **result.stats,
        "payouts_waiting_for_cover": len(waiting_payouts),
        "credits_waiting_for_cover": len(waiting_credits),
        "credits_raised_from_evidence": len(raised) - len(short),
        "shortfalls_raised_from_evidence": len(short),
    }
    waiting = Waiting(frozenset(waiting_payouts), frozenset(waiting_credits))
    return replace(result, exceptions=exceptions, judged=judged, stats=stats), waiting
