"""The engine's exceptions, opened, changed, closed and reopened (never deleted).

An exception changes (and its `version` moves) only when its content changes; one that no
longer applies is closed with a reason, never deleted. Its key is (kind, payment, invoice) and,
where those do not say what it is about (a payout, a WHMCS payment), its subject; rows keyed
before subjects existed are recognised by their old key and their subject. A runner-up's rule
and confidence are part of its content: its detail words the same facts, so they change only
with it (rows stored before 0014 had them filled from their detail by that migration). Every
exception the engine closes or reopens gets its audit entry, in the same transaction as the row.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from numbers import Integral
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recon import audit
from recon.db.base import utcnow
from recon.db.models import ReconException
from recon.matching.frames import MatchResult
from recon.review.ledger import live_allocations as live_allocations  # the core's definition
from recon.review.ledger import live_clause as live_clause
from recon.review.queue import NO_SEARCH_TEXT, search_texts
from tasks.decisions import ENGINE, NOT_THE_ENGINES, RECORDED_RULE_PREFIX, key_of, text_of


@dataclass(frozen=True)
class ExceptionChanges:
    """What storing the engine's exceptions did."""

    raised: int
    opened: int
    changed: int
    reopened: int
    closed: int


EXCEPTION_FIELDS = ("kind", "transaction_ref", "invoice_id", "subject_ref", "amount_minor",
                    "currency", "detail", "rule", "confidence")  # fmt: skip

# How rows stored before subjects existed name theirs (the engine's wording of each detail).
_SUBJECT_IN_DETAIL = {
    "payout_missing": re.compile(r"^payout (\S+) "),
    "payout_incomplete": re.compile(r"^payout (\S+) "),
    "payout_shortfall": re.compile(r"^payout (\S+) is "),
    "unbacked_payment": re.compile(r"^WHMCS payment (\S+) "),
}


def exception_key(
    tenant_id: str, kind: str, ref: str | None, invoice: str | None, subject: str | None
) -> str:
    """The key of an exception: its subject is part of it only where it has one."""
    if subject:
        return key_of(tenant_id, kind, ref, invoice, subject)
    return key_of(tenant_id, kind, ref, invoice)


def subject_of(exception: ReconException) -> str | None:
    """An exception's subject: its column, or for a row stored before 0008, read from its detail."""
    if exception.subject_ref or exception.transaction_ref is not None:
        return exception.subject_ref
    pattern = _SUBJECT_IN_DETAIL.get(exception.kind)
    found = pattern.match(exception.detail or "") if pattern else None
    return found.group(1) if found else None


def _rule_of(value: object) -> str | None:
    """A runner-up's rule from the engine's frame (NaN, or "", where a row has none)."""
    return value if isinstance(value, str) and value else None


def _confidence_of(value: object) -> int | None:
    """A runner-up's confidence from the engine's frame (missing where a row has none)."""
    return int(value) if isinstance(value, Integral) else None


def _wanted_exceptions(tenant_id: str, result: MatchResult) -> dict[str, dict[str, Any]]:
    wanted: dict[str, dict[str, Any]] = {}
    for row in result.exceptions.to_dict("records"):
        ref = text_of(row["transaction_id"]) or None
        invoice = str(row["invoice_id"]) if int(row["invoice_id"] or 0) else None
        subject = text_of(row.get("subject")) or None
        key = exception_key(tenant_id, str(row["kind"]), ref, invoice, subject)
        wanted[key] = {
            "kind": str(row["kind"]),
            "transaction_ref": ref,
            "invoice_id": invoice,
            "subject_ref": subject,
            "amount_minor": int(row["amount"]),
            "currency": text_of(row.get("currency")) or None,
            "detail": text_of(row["detail"]),
            "rule": _rule_of(row.get("rule")),
            "confidence": _confidence_of(row.get("confidence")),
        }
    return wanted


def _existing_exceptions(
    session: Session, tenant_id: str, wanted: dict[str, dict[str, Any]]
) -> dict[str, ReconException]:
    """The stored row of each wanted exception: by its key, or by the key it had before
    subjects were part of keys (one per kind, payment and invoice) and the subject it names."""
    keys = sorted(wanted)
    found = (
        {
            e.exception_key: e
            for e in session.scalars(
                select(ReconException).where(ReconException.exception_key.in_(keys))
            )
        }
        if keys
        else {}
    )
    legacy: dict[str, tuple[str, str]] = {}
    for key, values in wanted.items():
        if values["subject_ref"] and key not in found:
            old = exception_key(
                tenant_id, values["kind"], values["transaction_ref"], values["invoice_id"], None
            )
            legacy[key] = (old, values["subject_ref"])
    if legacy:
        by_old = {
            (e.exception_key, subject_of(e)): e
            for e in session.scalars(
                select(ReconException).where(
                    ReconException.exception_key.in_(sorted({o for o, _ in legacy.values()}))
                )
            )
        }
        for key, old_and_subject in legacy.items():
            if (row := by_old.get(old_and_subject)) is not None:
                found[key] = row
    return found


def _audit_exception(
    session: Session, exception: ReconException, action: str, run_id: str, reason: str
) -> None:
    audit.append(
        session,
        actor=ENGINE,
        action=action,
        entity="exception",
        entity_id=exception.exception_key,
        details={
            "run_id": run_id,
            "reason": reason,
            "exception_id": exception.id,
            "kind": exception.kind,
            "transaction_ref": exception.transaction_ref,
            "invoice_id": exception.invoice_id,
            "subject_ref": exception.subject_ref,
            "amount_minor": exception.amount_minor,
            "currency": exception.currency,
        },
    )


# Why a payout or WHMCS payment the engine judged again no longer has its exception.
NO_LONGER = {
    "payout_missing": "the payout's bank credit is found, or it is no longer due",
    "payout_shortfall": "the payout now adds up",
    "payout_incomplete": "every transaction of the payout is now known",
    "unbacked_payment": "money now confirms the WHMCS payment",
}


def _judged_open(session: Session, result: MatchResult) -> list[ReconException]:
    """Open exceptions about a payout or WHMCS payment the engine judged this time."""
    j = result.judged
    judged = set(zip(j["kind"].astype(str), j["subject"].astype(str), strict=True))
    if not judged:
        return []
    # one read of the open rows of these kinds (few), not one per thousand subjects judged
    rows = session.scalars(
        select(ReconException).where(
            ReconException.status == "open",
            ReconException.kind.in_(sorted({kind for kind, _ in judged})),
            ReconException.transaction_ref.is_(None),
        )
    )
    return [e for e in rows if (e.kind, e.subject_ref) in judged]


# What the engine raises on a provider's bank credit it finds no payout for; linking the credit
# to its payout later closes it (a shortfall of the same credit stands: the run that decided it
# raised it).
LINKING_CLOSES = "unmatched_payment"


def _linked_evidence(result: MatchResult, window_refs: set[str]) -> dict[str, str]:
    """Bank credits outside the window (evidence) the engine linked to a payout: credit ->
    payout. An earlier run that had the credit but not yet its payout may have raised it."""
    m = result.payout_matches
    if m.empty:
        return {}
    pairs = zip(m["transaction_id"].astype(str), m["payout_id"].astype(str), strict=True)
    return {credit: payout for credit, payout in pairs if credit not in window_refs}


def _closing_reasons(
    session: Session,
    result: MatchResult,
    window_refs: set[str],
    kept: set[int],
    waiting: frozenset[str] = frozenset(),
) -> list[tuple[ReconException, str]]:
    """Open engine exceptions within this run's scope that it no longer raises, with why: of
    the window's payments, of the payouts and WHMCS payments it judged, and of the credits
    outside the window it linked to a payout. A payment whose judgement waits (`waiting`) is
    left as it is."""
    allocated: dict[str, list[str]] = defaultdict(list)
    confirmed_invoices: set[str] = set()
    for row in result.allocations.to_dict("records"):
        allocated[str(row["transaction_id"])].append(str(row["invoice_id"]))
        if str(row["rule"]).startswith(RECORDED_RULE_PREFIX):
            confirmed_invoices.add(str(row["invoice_id"]))
    candidates: list[ReconException] = []
    refs = sorted(window_refs)
    if refs:
        candidates += session.scalars(
            select(ReconException).where(
                ReconException.status == "open", ReconException.transaction_ref.in_(refs)
            )
        )
    if confirmed_invoices:
        candidates += session.scalars(
            select(ReconException).where(
                ReconException.status == "open",
                ReconException.kind == "unbacked_payment",
                ReconException.invoice_id.in_(sorted(confirmed_invoices)),
            )
        )
    candidates += _judged_open(session, result)
    linked = _linked_evidence(result, window_refs)
    if linked:
        candidates += session.scalars(
            select(ReconException).where(
                ReconException.status == "open",
                ReconException.kind == LINKING_CLOSES,
                ReconException.transaction_ref.in_(sorted(linked)),
            )
        )
    closing: list[tuple[ReconException, str]] = []
    for exception in {e.id: e for e in candidates}.values():
        if exception.id in kept or exception.kind in NOT_THE_ENGINES:
            continue
        if exception.transaction_ref in waiting:
            continue  # its judgement waits for stored fetches: neither raised nor closed
        if exception.transaction_ref in linked:
            reason = f"the credit is now linked to payout {linked[exception.transaction_ref]}"
        elif exception.transaction_ref is None:
            reason = NO_LONGER.get(exception.kind, "money now confirms the WHMCS payment")
        elif invoices := allocated.get(exception.transaction_ref):
            reason = f"the payment is now allocated to invoice {', '.join(sorted(invoices))}"
        else:
            reason = "the engine no longer raises it for this payment"
        closing.append((exception, reason))
    return closing


def store_exceptions(
    session: Session,
    tenant_id: str,
    run_id: str,
    result: MatchResult,
    window_refs: set[str],
    waiting: frozenset[str] = frozenset(),
) -> ExceptionChanges:
    """Open new exceptions, change those whose content changed, reopen those the engine had
    closed, and close the open ones of this window that no longer apply (with the reason),
    including those of credits outside the window that this run linked to their payout.

    A row changes, and its `version` moves, only when its content does; an exception a person
    resolved is left as it is, and so is one of a payment in `waiting` (its judgement waits
    for stored fetches to hold the days it needs, `tasks.cover`).
    """
    wanted = _wanted_exceptions(tenant_id, result)
    texts = search_texts(session, (values["transaction_ref"] for values in wanted.values()))
    for values in wanted.values():  # the payment's payer and reference, which the queue searches
        values.update(texts.get(values["transaction_ref"], NO_SEARCH_TEXT))
    existing = _existing_exceptions(session, tenant_id, wanted)
    opened = changed = reopened = 0
    for key, values in wanted.items():
        current = existing.get(key)
        if current is None:
            existing[key] = ReconException(
                tenant_id=tenant_id, exception_key=key, run_id=run_id, **values
            )
            session.add(existing[key])
            opened += 1
            continue
        differs = any(getattr(current, f) != v for f, v in values.items())
        if current.status == "open" and differs:
            for field_name, value in values.items():
                setattr(current, field_name, value)
            current.run_id = run_id
            current.updated_by = ENGINE  # what a person's stale write is told
            changed += 1
        elif current.status == "closed" and current.closed_by_run is not None:
            for field_name, value in values.items():
                setattr(current, field_name, value)
            current.status = "open"
            current.run_id = run_id
            current.updated_by = ENGINE
            current.closed_reason = current.closed_at = current.closed_by_run = None
            session.flush()
            _audit_exception(session, current, "exception.reopened", run_id, "raised again")
            reopened += 1
    session.flush()
    kept = {e.id for e in existing.values()}
    closing = _closing_reasons(session, result, window_refs, kept, waiting)
    now = utcnow()
    for exception, reason in closing:
        exception.status = "closed"
        exception.closed_reason = reason
        exception.closed_at = now
        exception.closed_by_run = run_id
        exception.updated_by = ENGINE
        session.flush()
        _audit_exception(session, exception, "exception.closed", run_id, reason)
    session.flush()
    return ExceptionChanges(len(wanted), opened, changed, reopened, len(closing))
