"""Anchors of a tenant's audit chain: a signed record of its head, kept outside the database.

Deleting the newest entries leaves a shorter chain that still verifies, so the head is anchored:
an `Anchor` (tenant, seq, head hash, time, key id, HMAC signature) is written to a file or carried
by a run summary, and `check_anchor` fails when the chain no longer holds the entry the anchor saw.
The names are importable from `recon.audit` too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from recon.audit import (
    CHAIN_HMAC,
    CHAIN_SHA256,
    AuditChainBrokenError,
    ChainBreak,
    ChainKey,
    ChainReport,
    _entry_problem,
    _timestamp,
    canonical_json,
    resolve_chain_key,
    stored_entry,
    verify_chain,
)
from recon.db.base import utcnow
from recon.db.models import AuditEntry
from recon.db.tenancy import tenant_session
from recon.errors import InputFileError

ANCHOR_FORMAT = "recon-audit-anchor/1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")


class AnchorFileError(InputFileError):
    """An anchor file is unreadable or not an anchor."""


@dataclass(frozen=True)
class Anchor:
    """A signed record of a chain's head, kept outside the database."""

    tenant_id: str
    seq: int
    head_hash: str
    anchored_at: dt.datetime
    key_id: str
    signature: str

    def signed_fields(self) -> dict[str, Any]:
        """What the signature covers."""
        return {
            "format": ANCHOR_FORMAT,
            "tenant": self.tenant_id,
            "seq": self.seq,
            "head_hash": self.head_hash,
            "anchored_at": _timestamp(self.anchored_at),
            "key_id": self.key_id,
        }

    def to_dict(self) -> dict[str, Any]:
        """The anchor as JSON-ready fields (what files, run summaries and reports carry)."""
        return {**self.signed_fields(), "signature": self.signature}

    def to_json(self) -> str:
        """The anchor file's text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: object) -> Anchor:
        """Parse anchor fields; AnchorFileError naming the first bad field."""
        if not isinstance(data, dict):
            raise AnchorFileError("the anchor is not a JSON object")
        if data.get("format") != ANCHOR_FORMAT:
            raise AnchorFileError(f"the anchor's format is not {ANCHOR_FORMAT!r}")
        tenant, seq, at = data.get("tenant"), data.get("seq"), data.get("anchored_at")
        if not isinstance(tenant, str) or not tenant:
            raise AnchorFileError("the anchor's tenant is missing")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise AnchorFileError("the anchor's seq is not a positive integer")
        for name, pattern in (("head_hash", _HEX64), ("key_id", _HEX16), ("signature", _HEX64)):
            value = data.get(name)
            if not isinstance(value, str) or not pattern.match(value):
                raise AnchorFileError(f"the anchor's {name} is missing or not hexadecimal")
        try:
            anchored_at = dt.datetime.fromisoformat(at) if isinstance(at, str) else None
        except ValueError:
            anchored_at = None
        if anchored_at is None or anchored_at.tzinfo is None:
            raise AnchorFileError("the anchor's anchored_at is not an ISO time with a zone")
        return cls(tenant, seq, data["head_hash"], anchored_at, data["key_id"], data["signature"])


def _anchor_signature(key: ChainKey, fields: Mapping[str, Any]) -> str:
    return hmac.new(key.anchor, canonical_json(fields).encode("utf-8"), hashlib.sha256).hexdigest()


def sign_anchor(
    key: ChainKey, tenant_id: str, seq: int, head_hash: str, anchored_at: dt.datetime
) -> Anchor:
    """An anchor of (tenant, seq, head hash) at `anchored_at`, signed with the chain key."""
    unsigned = Anchor(tenant_id, seq, head_hash, anchored_at, key.key_id, "")
    return Anchor(
        tenant_id,
        seq,
        head_hash,
        anchored_at,
        key.key_id,
        _anchor_signature(key, unsigned.signed_fields()),
    )


def anchor_signature_problem(anchor: Anchor, key: ChainKey) -> str | None:
    """Why the anchor's signature does not verify with `key`, or None when it does."""
    if anchor.key_id != key.key_id:
        return (
            f"the anchor was signed with audit_chain_key id {anchor.key_id}, not with the "
            f"configured key (id {key.key_id})"
        )
    expected = _anchor_signature(key, anchor.signed_fields())
    if not hmac.compare_digest(expected, anchor.signature):
        return "the anchor's signature does not verify: the anchor was changed after it was signed"
    return None


def _head(session: Session, tenant_id: str) -> AuditEntry | None:
    return session.scalars(
        select(AuditEntry)
        .where(AuditEntry.tenant_id == tenant_id)
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    ).first()


def anchor_for(source: Session | Engine, tenant_id: str, key: ChainKey | None = None) -> Anchor:
    """A signed anchor of the tenant's current head; AuditChainBrokenError when there is none.

    The head must be a keyed entry whose HMAC verifies; since every HMAC covers the previous
    hash, that head commits to the whole chain behind it (`verify_chain` checks the rest).
    """
    chain_key = key or resolve_chain_key()
    if isinstance(source, Engine):
        with tenant_session(source, tenant_id) as session:
            head = _head(session, tenant_id)
    else:
        head = _head(source, tenant_id)
    if head is None:
        raise AuditChainBrokenError(
            f"tenant {tenant_id} has no audit entries to anchor: every chain starts with its "
            "tenant.added entry, so they were deleted or truncated"
        )
    if (head.chain_version or CHAIN_SHA256) < CHAIN_HMAC:
        raise AuditChainBrokenError(
            f"tenant {tenant_id}'s newest audit entry (seq {head.seq}) is not keyed; run "
            f"`recon audit seal --tenant {tenant_id}` before anchoring"
        )
    problem = _entry_problem(stored_entry(head), chain_key, keyed_before=True)
    if problem is not None:
        raise AuditChainBrokenError(
            f"audit chain broken at {ChainBreak(tenant_id, head.seq, head.id, problem)}"
        )
    return sign_anchor(chain_key, tenant_id, head.seq, head.entry_hash, utcnow())


@dataclass(frozen=True)
class AnchorCheck:
    """The outcome of checking a chain against an anchor."""

    anchor: Anchor
    report: ChainReport | None
    problem: str | None

    @property
    def ok(self) -> bool:
        """True when the anchor is genuine and the chain still holds the entry it saw."""
        return self.problem is None


def check_anchor(session: Session, anchor: Anchor, key: ChainKey | None = None) -> AnchorCheck:
    """Check the anchor's signature, the tenant's whole chain, and the anchored entry in it."""
    chain_key = key or resolve_chain_key()
    problem = anchor_signature_problem(anchor, chain_key)
    if problem is not None:
        return AnchorCheck(anchor, None, problem)
    report = verify_chain(session, anchor.tenant_id, chain_key)
    if report.first_break is not None:
        return AnchorCheck(anchor, report, str(report.first_break))
    seen = f"the anchor of {_timestamp(anchor.anchored_at)} saw entry seq {anchor.seq}"
    stored = session.scalars(
        select(AuditEntry).where(
            AuditEntry.tenant_id == anchor.tenant_id, AuditEntry.seq == anchor.seq
        )
    ).first()
    if stored is None:
        return AnchorCheck(
            anchor,
            report,
            f"{seen} but the chain now ends at seq {report.head_seq}: newer entries were deleted",
        )
    if stored.entry_hash != anchor.head_hash:
        return AnchorCheck(
            anchor,
            report,
            f"{seen} with hash {anchor.head_hash[:16]}, but that entry now hashes to "
            f"{stored.entry_hash[:16]}: the chain was rewritten",
        )
    return AnchorCheck(anchor, report, None)
