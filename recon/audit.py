"""The audit log: append-only and hash-chained per tenant.

Each entry's hash is SHA-256 over the previous entry's hash and the canonical JSON of the entry
(sorted keys, no whitespace, UTF-8). Editing, deleting or reordering any entry breaks the chain at
that point, and `verify_chain` names the first entry where it breaks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from recon.db.base import utcnow
from recon.db.models import AuditEntry
from recon.db.tenancy import TENANT_KEY

GENESIS_HASH = "0" * 64


def canonical_json(value: Mapping[str, Any]) -> str:
    """Deterministic JSON: sorted keys, compact separators, non-ASCII kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _timestamp(value: dt.datetime) -> str:
    # SQLite gives back naive datetimes; the chain is always computed on aware UTC seconds.
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def entry_payload(entry: AuditEntry) -> dict[str, Any]:
    """The fields an entry's hash covers."""
    return {
        "tenant_id": entry.tenant_id,
        "seq": entry.seq,
        "occurred_at": _timestamp(entry.occurred_at),
        "actor": entry.actor,
        "action": entry.action,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "details": entry.details,
    }


def compute_hash(prev_hash: str, payload: Mapping[str, Any]) -> str:
    """SHA-256 of the previous hash followed by the canonical payload."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(canonical_json(payload).encode("utf-8"))
    return digest.hexdigest()


def _lock_chain(session: Session, tenant_id: str) -> None:
    """Serialise writers of one tenant's chain (PostgreSQL); SQLite serialises writes itself."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"audit:{tenant_id}"},
        )


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    details: Mapping[str, Any] | None = None,
    tenant_id: str | None = None,
) -> AuditEntry:
    """Append one entry to the tenant's chain inside the caller's transaction."""
    tenant = tenant_id or session.info.get(TENANT_KEY)
    if not isinstance(tenant, str) or not tenant:
        raise ValueError("an audit entry needs a tenant")
    _lock_chain(session, tenant)
    last = session.execute(
        select(AuditEntry.seq, AuditEntry.entry_hash)
        .where(AuditEntry.tenant_id == tenant)
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    ).first()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    entry = AuditEntry(
        tenant_id=tenant,
        seq=seq,
        occurred_at=utcnow(),
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        details=json.loads(canonical_json(dict(details or {}))),
        prev_hash=prev_hash,
        entry_hash="",
    )
    entry.entry_hash = compute_hash(prev_hash, entry_payload(entry))
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class ChainBreak:
    """Where and why a tenant's chain stops verifying."""

    tenant_id: str
    seq: int
    entry_id: int
    reason: str

    def __str__(self) -> str:
        return f"tenant {self.tenant_id}: entry seq {self.seq} (id {self.entry_id}) {self.reason}"


@dataclass(frozen=True)
class ChainReport:
    """The outcome of walking one tenant's chain."""

    tenant_id: str
    entries: int
    head_hash: str
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        """True when every entry verified."""
        return self.first_break is None


def verify_entries(tenant_id: str, entries: Iterable[AuditEntry]) -> ChainReport:
    """Walk entries in id order (the order they were written) and report the first break."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    for entry in entries:
        count += 1
        reason: str | None = None
        if entry.seq != expected_seq:
            reason = (
                f"has sequence {entry.seq} where {expected_seq} was expected (missing or moved)"
            )
        elif entry.prev_hash != prev_hash:
            reason = "does not point at the previous entry's hash (an entry before it changed)"
        elif compute_hash(entry.prev_hash, entry_payload(entry)) != entry.entry_hash:
            reason = "was changed after it was written (its hash does not match its content)"
        if reason is not None:
            return ChainReport(
                tenant_id, count, prev_hash, ChainBreak(tenant_id, entry.seq, entry.id, reason)
            )
        prev_hash = entry.entry_hash
        expected_seq += 1
    return ChainReport(tenant_id, count, prev_hash, None)


def verify_chain(session: Session, tenant_id: str) -> ChainReport:
    """Verify one tenant's whole chain as stored."""
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.tenant_id == tenant_id).order_by(AuditEntry.id)
    )
    return verify_entries(tenant_id, entries)
