"""The engine's record of allocations: appended, and reversed by new rows.

Allocations are append-only (the database refuses UPDATE and DELETE on them): an allocation
the engine no longer proposes is undone by a *reversal* row that points at it (`reverses_id`)
and carries the negated amount; a changed proposal is a reversal of the old row and a new row;
a proposal that did not change writes nothing. `live_allocations` (defined in the core,
`recon.review.ledger`) is the one definition of the allocations in force. What a person decided
is never touched, and a (payment, invoice) pair a person reversed is not proposed again
(`without_vetoed`).

Every reversal gets its audit entry, in the same transaction as the row. The engine's exceptions
are stored by `tasks.exception_store`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from recon import audit
from recon.canonical import split_transaction_ref
from recon.db.models import Allocation, AppliedPayment
from recon.matching.frames import MatchResult
from recon.review.allocations import REVERSED_AFTER_WRITEBACK
from recon.review.ledger import live_allocations as live_allocations  # the core's definition
from recon.review.ledger import live_clause as live_clause
from recon.review.ledger import reversed_by_people

ENGINE = "engine"
RECORDED_RULE_PREFIX = "recorded_"
# Exceptions other steps raise; the engine neither re-raises nor closes them.
NOT_THE_ENGINES = frozenset({"apply_failed", REVERSED_AFTER_WRITEBACK})
ALLOCATION_FIELDS = ("amount_minor", "currency", "rule", "confidence", "decision")


def key_of(*parts: object) -> str:
    """The SHA-256 idempotency key of a row made of `parts`."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).hexdigest()


def text_of(value: object) -> str:
    """A stored value as text for keys and digests (None is empty)."""
    return "" if value is None else str(value)


DIGEST_COLUMNS = ("allocation_key", "transaction_ref", "invoice_id", "amount_minor", "currency",
                  "rule", "confidence", "decision", "origin")  # fmt: skip


def digest_of(rows: Iterable[Iterable[object]]) -> str:
    """SHA-256 of allocation rows given as DIGEST_COLUMNS values: each row is its values joined
    by "|" and ended by a newline, rows sorted as text (so the order read does not matter)."""
    lines = sorted("|".join(text_of(v) for v in row) + "\n" for row in rows)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8"))
    return digest.hexdigest()


def allocation_digest(session: Session) -> tuple[int, str]:
    """How many allocations are live for the session's tenant, and the digest of that set."""
    rows = [[getattr(a, c) for c in DIGEST_COLUMNS] for a in live_allocations(session)]
    return len(rows), digest_of(rows)


# -- allocations -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllocationChanges:
    """What storing the engine's allocations did."""

    auto: int
    review: int
    allocated_minor: dict[str, int]
    added: int
    reversed: int


def _applied(session: Session) -> set[tuple[str, str]]:
    return {
        (a.invoice_id, a.transid)
        for a in session.scalars(select(AppliedPayment).where(AppliedPayment.state != "failed"))
    }


def _wanted_allocations(result: MatchResult) -> dict[tuple[str, str], dict[str, Any]]:
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    for row in result.allocations.to_dict("records"):
        ref = str(row["transaction_id"])
        if ref.endswith(":fee"):
            continue
        wanted[(ref, str(row["invoice_id"]))] = {
            "amount_minor": int(row["amount"]),
            "currency": str(row["currency"]),
            "rule": str(row["rule"]),
            "confidence": int(row["confidence"]),
            "decision": str(row["decision"]),
        }
    return wanted


def _reverse(session: Session, original: Allocation, run_id: str, reason: str) -> Allocation:
    reversal = Allocation(
        tenant_id=original.tenant_id,
        allocation_key=key_of(original.tenant_id, "reversal", original.allocation_key),
        run_id=run_id,
        transaction_ref=original.transaction_ref,
        invoice_id=original.invoice_id,
        amount_minor=-original.amount_minor,
        currency=original.currency,
        rule=original.rule,
        confidence=original.confidence,
        decision=original.decision,
        origin=original.origin,
        reverses_id=original.id,
        created_by=ENGINE,
    )
    session.add(reversal)
    session.flush()
    audit.append(
        session,
        actor=ENGINE,
        action="allocation.reversed",
        entity="allocation",
        entity_id=reversal.allocation_key,
        details={
            "run_id": run_id,
            "reason": reason,
            "reversal_id": reversal.id,
            "reverses_id": original.id,
            "reverses_key": original.allocation_key,
            "transaction_ref": original.transaction_ref,
            "invoice_id": original.invoice_id,
            "amount_minor": original.amount_minor,
            "currency": original.currency,
            "rule": original.rule,
            "confidence": original.confidence,
            "decision": original.decision,
        },
    )
    return reversal


def store_allocations(
    session: Session, tenant_id: str, run_id: str, result: MatchResult, window_refs: set[str]
) -> AllocationChanges:
    """Append the engine's allocations for the window's payments.

    A live engine allocation of a window payment that the engine no longer proposes, or now
    proposes differently, is reversed (then the new proposal is appended); one already applied
    to WHMCS is never touched. An unchanged proposal writes nothing.
    """
    wanted = _wanted_allocations(result)
    refs = sorted(window_refs)
    live = (
        {
            (a.transaction_ref, a.invoice_id): a
            for a in live_allocations(
                session, Allocation.origin == ENGINE, Allocation.transaction_ref.in_(refs)
            )
        }
        if refs
        else {}
    )
    used_keys = (
        set(session.scalars(select(Allocation.allocation_key).where(
            Allocation.transaction_ref.in_(refs)
        )))
        if refs
        else set()
    )  # fmt: skip
    applied = _applied(session)

    def frozen(allocation: Allocation) -> bool:
        transid = split_transaction_ref(allocation.transaction_ref)[2]
        return (allocation.invoice_id, transid) in applied

    def same(allocation: Allocation, values: dict[str, Any]) -> bool:
        return all(getattr(allocation, f) == values[f] for f in ALLOCATION_FIELDS)

    reversed_count = added = 0
    for pair, allocation in live.items():
        values = wanted.get(pair)
        if frozen(allocation) or (values is not None and same(allocation, values)):
            continue
        reason = "the engine no longer proposes it" if values is None else "replaced"
        _reverse(session, allocation, run_id, reason)
        reversed_count += 1
    for pair, values in wanted.items():
        current = live.get(pair)
        if current is not None and (frozen(current) or same(current, values)):
            continue
        ref, invoice = pair
        key = key_of(tenant_id, ref, invoice, ENGINE)
        generation = 0
        while key in used_keys:
            generation += 1
            key = key_of(tenant_id, ref, invoice, ENGINE, generation)
        used_keys.add(key)
        session.add(
            Allocation(
                tenant_id=tenant_id,
                allocation_key=key,
                run_id=run_id,
                origin=ENGINE,
                created_by=ENGINE,
                transaction_ref=ref,
                invoice_id=invoice,
                **values,
            )
        )
        added += 1
    session.flush()
    auto = sum(1 for v in wanted.values() if v["decision"] == "auto")
    sums: dict[str, int] = defaultdict(int)
    for values in wanted.values():
        if values["decision"] == "auto":
            sums[values["currency"]] += values["amount_minor"]
    return AllocationChanges(auto, len(wanted) - auto, dict(sums), added, reversed_count)


def without_vetoed(session: Session, result: MatchResult, window_refs: set[str]) -> MatchResult:
    """The engine's result without the (payment, invoice) allocations a person reversed: people
    win, the engine never proposes those again. A payment left with no allocation and no
    exception is raised as unmatched, so it stays in front of a person."""
    vetoed = reversed_by_people(session, window_refs)
    a = result.allocations
    if not vetoed or a.empty:
        return result
    pairs = list(zip(a["transaction_id"].astype(str), a["invoice_id"].astype(str), strict=True))
    drop = [pair in vetoed for pair in pairs]
    if not any(drop):
        return result
    kept = a[[not d for d in drop]].reset_index(drop=True)
    invoices_of: dict[str, list[str]] = defaultdict(list)
    amount_of: dict[str, int] = defaultdict(int)
    currency_of: dict[str, str] = {}
    for (ref, invoice), dropped, amount, currency in zip(
        pairs, drop, a["amount"], a["currency"].astype(str), strict=True
    ):
        if dropped:
            invoices_of[ref].append(invoice)
            amount_of[ref] += int(amount)
            currency_of[ref] = currency
    placed = set(kept["transaction_id"].astype(str))
    placed |= set(result.exceptions["transaction_id"].astype(str))
    rows = [
        {"kind": "unmatched_payment", "transaction_id": ref, "invoice_id": 0,
         "amount": amount_of[ref], "currency": currency_of[ref],
         "detail": f"a person reversed its allocation to invoice {', '.join(invoices_of[ref])}; "
                   "the engine does not propose it again", "subject": ""}
        for ref in sorted(set(invoices_of) - placed)
    ]  # fmt: skip
    exceptions = result.exceptions
    if rows:
        extra = pd.DataFrame(rows, columns=list(exceptions.columns)).astype(
            exceptions.dtypes.to_dict()
        )
        exceptions = pd.concat([exceptions, extra], ignore_index=True)
    return replace(result, allocations=kept, exceptions=exceptions)


# -- exceptions ------------------------------------------------------------------------------------
