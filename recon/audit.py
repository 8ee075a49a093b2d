"""The audit log: append-only, keyed and hash-chained per tenant, anchored outside the database.

Each entry's hash is HMAC-SHA256, keyed with the `audit_chain_key` secret, over the previous
entry's hash and the canonical JSON of the entry (sorted keys, no whitespace, UTF-8). Editing,
deleting or reordering an entry breaks the chain at that point, and whoever owns the table cannot
recompute the hashes without the key; `verify_chain` names the first entry where it breaks. A
tenant without entries is broken too (every chain starts with `tenant.added`).

Entries written before the chain was keyed (`chain_version` 1) carry a plain SHA-256 hash. They
verify only as a prefix that a keyed entry follows (whose HMAC covers their head hash); an
unkeyed entry after a keyed one, or a chain ending in unkeyed entries, is broken.

Deleting the newest entries leaves a shorter chain that still verifies, so the head is also
anchored outside the database (`recon.audit_anchor`; its names are importable from here too).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain as chain_iter
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Text, select, text
from sqlalchemy import cast as cast_
from sqlalchemy.orm import Session

from recon.audit_verify import FastKeyedCheck, stored_time
from recon.db.base import utcnow
from recon.db.models import AuditEntry
from recon.db.tenancy import TENANT_KEY
from recon.errors import ConfigError, ReconError

if TYPE_CHECKING:
    from recon.secrets import SecretResolver

GENESIS_HASH = "0" * 64
CHAIN_SHA256 = 1
"""Chain format of entries written before the chain was keyed: plain SHA-256."""
CHAIN_HMAC = 2
"""Chain format of keyed entries: HMAC-SHA256 with `audit_chain_key`."""
MIN_KEY_LENGTH = 32
_SESSION_KEY = "recon_audit_chain_key"


class AuditChainBrokenError(ReconError):
    """A tenant's audit chain does not verify, or lost what an anchor saw."""

    exit_code = 7


def canonical_json(value: Mapping[str, Any]) -> str:
    """Deterministic JSON: sorted keys, compact separators, non-ASCII kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _timestamp(value: dt.datetime) -> str:
    # SQLite gives back naive datetimes; the chain is always computed on aware UTC seconds.
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


# -- the key ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainKey:
    """The chain's HMAC key, split by purpose; `key_id` names it without revealing it."""

    chain: bytes = field(repr=False)
    anchor: bytes = field(repr=False)
    key_id: str

    @classmethod
    def from_secret(cls, value: str) -> ChainKey:
        """Derive the chain, anchor and id keys from the `audit_chain_key` secret."""
        if len(value) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"secret audit_chain_key is too short ({len(value)} characters): use at least "
                f"{MIN_KEY_LENGTH} random characters, e.g. from `openssl rand -hex 32`"
            )
        secret = value.encode("utf-8")

        def derive(purpose: str) -> bytes:
            return hmac.new(secret, purpose.encode("ascii"), hashlib.sha256).digest()

        return cls(
            chain=derive("recon audit chain v2"),
            anchor=derive("recon audit anchor v1"),
            key_id=derive("recon audit key id").hex()[:16],
        )


_key_cache: dict[str, ChainKey] = {}
_key_cache_lock = threading.Lock()


def resolve_chain_key(resolver: SecretResolver | None = None) -> ChainKey:
    """The chain key from the secrets registry (Vault; in development RECON_SECRET_AUDIT_CHAIN_KEY).

    Without a resolver the process settings are read and the key is cached per configuration, so
    appending many entries does not read Vault each time. A missing key raises
    SecretUnavailableError naming `audit_chain_key`; no key is ever generated.
    """
    from recon.redaction import register_secret
    from recon.secrets import AUDIT_CHAIN_KEY, SecretResolver, env_var_name
    from recon.settings import load_settings

    if resolver is not None:
        return ChainKey.from_secret(resolver.get(AUDIT_CHAIN_KEY))
    settings = load_settings()
    parts = [settings.model_dump_json(), os.environ.get(env_var_name(AUDIT_CHAIN_KEY)) or ""]
    for secret in (settings.vault_token, settings.vault_role_id, settings.vault_secret_id):
        parts.append(secret.get_secret_value() if secret is not None else "")
    fingerprint = hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()
    with _key_cache_lock:
        cached = _key_cache.get(fingerprint)
    if cached is not None:
        return cached
    value = SecretResolver(settings).get(AUDIT_CHAIN_KEY)
    register_secret(value)
    key = ChainKey.from_secret(value)
    with _key_cache_lock:
        _key_cache[fingerprint] = key
    return key


def bind_chain_key(session: Session, key: ChainKey) -> None:
    """Make `append` on this session use `key` (e.g. one resolved by the caller's runtime)."""
    session.info[_SESSION_KEY] = key


def _session_key(session: Session) -> ChainKey:
    key = session.info.get(_SESSION_KEY)
    if not isinstance(key, ChainKey):
        key = resolve_chain_key()
        bind_chain_key(session, key)
    return key


# -- entries ---------------------------------------------------------------------------------------


def entry_payload(entry: AuditEntry) -> dict[str, Any]:
    """The fields an entry's hash covers (keyed entries also cover their format and key id)."""
    payload: dict[str, Any] = {
        "tenant_id": entry.tenant_id,
        "seq": entry.seq,
        "occurred_at": _timestamp(entry.occurred_at),
        "actor": entry.actor,
        "action": entry.action,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "details": entry.details,
    }
    if (entry.chain_version or CHAIN_SHA256) >= CHAIN_HMAC:
        payload["chain_version"] = entry.chain_version
        payload["key_id"] = entry.key_id
    return payload


def compute_hash(prev_hash: str, payload: Mapping[str, Any]) -> str:
    """Format 1 (unkeyed): SHA-256 of the previous hash followed by the canonical payload."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(canonical_json(payload).encode("utf-8"))
    return digest.hexdigest()


def compute_keyed_hash(key: ChainKey, prev_hash: str, payload: Mapping[str, Any]) -> str:
    """Format 2: HMAC-SHA256 of the previous hash followed by the canonical payload."""
    message = prev_hash.encode("ascii") + canonical_json(payload).encode("utf-8")
    return hmac.new(key.chain, message, hashlib.sha256).hexdigest()


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
    key: ChainKey | None = None,
) -> AuditEntry:
    """Append one keyed entry to the tenant's chain inside the caller's transaction.

    The key comes from `key`, else from `bind_chain_key`, else from the secrets registry.
    """
    tenant = tenant_id or session.info.get(TENANT_KEY)
    if not isinstance(tenant, str) or not tenant:
        raise ValueError("an audit entry needs a tenant")
    chain_key = key or _session_key(session)  # resolved before the lock: it may read Vault
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
        chain_version=CHAIN_HMAC,
        key_id=chain_key.key_id,
    )
    entry.entry_hash = compute_keyed_hash(chain_key, prev_hash, entry_payload(entry))
    session.add(entry)
    session.flush()
    return entry


# -- verification ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainBreak:
    """Where and why a tenant's chain stops verifying (`entry_id` None: no entry to name)."""

    tenant_id: str
    seq: int
    entry_id: int | None
    reason: str
    kind: str = "broken"
    """`broken`, `empty` (no entries at all) or `unkeyed` (the chain ends in unkeyed entries)."""

    def __str__(self) -> str:
        if self.entry_id is None:
            return f"tenant {self.tenant_id}: {self.reason}"
        return f"tenant {self.tenant_id}: entry seq {self.seq} (id {self.entry_id}) {self.reason}"


@dataclass(frozen=True)
class ChainReport:
    """The outcome of walking one tenant's chain."""

    tenant_id: str
    entries: int
    head_hash: str
    first_break: ChainBreak | None
    head_seq: int = 0

    @property
    def ok(self) -> bool:
        """True when every entry verified."""
        return self.first_break is None


CHAIN_COLUMNS = (
    AuditEntry.id, AuditEntry.tenant_id, AuditEntry.seq, AuditEntry.occurred_at, AuditEntry.actor,
    AuditEntry.action, AuditEntry.entity, AuditEntry.entity_id, AuditEntry.details,
    AuditEntry.prev_hash, AuditEntry.entry_hash, AuditEntry.chain_version, AuditEntry.key_id,
)  # fmt: skip
"""What verification reads of an entry, in this order: `verify_chain` streams these as plain rows
(an ORM object per entry cost most of the time of a 100k-entry walk)."""
StoredEntry = tuple[
    int, str, int, dt.datetime, str, str, str, str, Any, str, str, "int | None", "str | None"
]
_CHAIN_BATCH = 10000
_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
_quote = json.encoder.encode_basestring  # the string encoder canonical_json uses (non-ASCII kept)


def stored_entry(entry: AuditEntry) -> StoredEntry:
    """An ORM entry as the row `verify_chain` reads (`CHAIN_COLUMNS`)."""
    return (entry.id, entry.tenant_id, entry.seq, entry.occurred_at, entry.actor, entry.action,
            entry.entity, entry.entity_id, entry.details, entry.prev_hash, entry.entry_hash,
            entry.chain_version, entry.key_id)  # fmt: skip


def stored_payload(row: StoredEntry) -> bytes:
    """`canonical_json(entry_payload(entry))` in UTF-8 for a stored row, written field by field in
    the payload's sorted key order (no dict to build and sort): byte for byte the same, and a row
    with a field of any other type than the columns give takes the dict path itself."""
    _, tenant, seq, at, actor, action, entity, entity_id, details, _, _, version, key_id = row
    if not (
        type(tenant) is str and type(actor) is str and type(action) is str
        and type(entity) is str and type(entity_id) is str and type(seq) is int
        and isinstance(at, dt.datetime) and (version is None or type(version) is int)
        and (key_id is None or type(key_id) is str)
    ):  # fmt: skip
        entry = AuditEntry(
            tenant_id=tenant, seq=seq, occurred_at=at, actor=actor, action=action, entity=entity,
            entity_id=entity_id, details=details, chain_version=version, key_id=key_id,
        )  # fmt: skip
        return canonical_json(entry_payload(entry)).encode("utf-8")
    if (version or CHAIN_SHA256) >= CHAIN_HMAC:
        key = "null" if key_id is None else _quote(key_id)
        return (
            f'{{"action":{_quote(action)},"actor":{_quote(actor)},"chain_version":{version},'
            f'"details":{_JSON.encode(details)},"entity":{_quote(entity)},'
            f'"entity_id":{_quote(entity_id)},"key_id":{key},'
            f'"occurred_at":"{_timestamp(at)}","seq":{seq},"tenant_id":{_quote(tenant)}}}'
        ).encode()
    return (
        f'{{"action":{_quote(action)},"actor":{_quote(actor)},'
        f'"details":{_JSON.encode(details)},"entity":{_quote(entity)},'
        f'"entity_id":{_quote(entity_id)},'
        f'"occurred_at":"{_timestamp(at)}","seq":{seq},"tenant_id":{_quote(tenant)}}}'
    ).encode()


def _entry_problem(row: StoredEntry, key: ChainKey, keyed_before: bool) -> str | None:
    prev_hash, entry_hash, version, key_id = row[9], row[10], row[11] or CHAIN_SHA256, row[12]
    if version == CHAIN_SHA256:
        if keyed_before:
            return "is an unkeyed entry after keyed ones (it was written without the key)"
        if (
            hashlib.sha256(prev_hash.encode("ascii") + stored_payload(row)).hexdigest()
            != entry_hash
        ):
            return "was changed after it was written (its hash does not match its content)"
        return None
    if version != CHAIN_HMAC:
        return f"has an unknown chain format {version}"
    if key_id != key.key_id:
        return (
            f"was keyed with audit_chain_key id {key_id}, not with the configured key "
            f"(id {key.key_id}): the wrong key is configured, or the entry was forged"
        )
    message = prev_hash.encode("ascii") + stored_payload(row)
    if hmac.digest(key.chain, message, "sha256").hex() != entry_hash:
        return "was changed after it was written (its HMAC does not match its content)"
    return None


def verify_entries(
    tenant_id: str, entries: Iterable[AuditEntry], key: ChainKey | None = None
) -> ChainReport:
    """Walk entries in id order (the order they were written) and report the first break."""
    return verify_rows(tenant_id, map(stored_entry, entries), key)


def verify_rows(
    tenant_id: str,
    rows: Iterable[StoredEntry],
    key: ChainKey | None = None,
    *,
    details_text: bool = False,
    time_text: bool = False,
) -> ChainReport:
    """`verify_entries` over rows of `CHAIN_COLUMNS`, in id order (`details_text`: each row's
    details is its stored JSON text, read as the JSON column reads it; `time_text`: each row's
    time is already `_timestamp`'s text, or None where it has none, see `audit_verify`)."""
    chain_key = key or resolve_chain_key()
    fast = FastKeyedCheck(
        chain_key.chain, chain_key.key_id, details_text=details_text, time_text=time_text
    )
    prev_hash, expected_seq, count = GENESIS_HASH, 1, 0
    keyed_before = False
    unkeyed_tail: tuple[int, int] | None = None  # (seq, id) of the first unkeyed entry at the end
    for row in rows:
        entry_id, seq, stored_prev, version = row[0], row[2], row[9], row[11]
        count += 1
        reason: str | None = None
        if seq != expected_seq:
            reason = f"has sequence {seq} where {expected_seq} was expected (missing or moved)"
        elif stored_prev != prev_hash:
            reason = "does not point at the previous entry's hash (an entry before it changed)"
        elif not fast(row):  # not a keyed entry that verifies at once: the full check says why
            if details_text:
                row = (*row[:8], json.loads(row[8]), *row[9:])
            if time_text:
                row = (*row[:3], stored_time(row), *row[4:])
            reason = _entry_problem(row, chain_key, keyed_before)
        if reason is not None:
            return ChainReport(
                tenant_id,
                count,
                prev_hash,
                ChainBreak(tenant_id, seq, entry_id, reason),
                expected_seq - 1,
            )
        if (version or CHAIN_SHA256) == CHAIN_HMAC:
            keyed_before, unkeyed_tail = True, None
        elif unkeyed_tail is None:
            unkeyed_tail = (seq, entry_id)
        prev_hash = row[10]
        expected_seq += 1
    head_seq = expected_seq - 1
    if count == 0:
        reason = (
            "has no audit entries: every chain starts with its tenant.added entry, so they were "
            "deleted or truncated"
        )
        return ChainReport(
            tenant_id, 0, prev_hash, ChainBreak(tenant_id, 0, None, reason, "empty"), 0
        )
    if unkeyed_tail is not None:
        reason = (
            "and every entry after it are not keyed with audit_chain_key, so nothing proves they "
            "were not rewritten; if they were written before the chain was keyed, `recon audit "
            f"seal --tenant {tenant_id}` binds them"
        )
        broken = ChainBreak(tenant_id, *unkeyed_tail, reason, "unkeyed")
        return ChainReport(tenant_id, count, prev_hash, broken, head_seq)
    return ChainReport(tenant_id, count, prev_hash, None, head_seq)


def verify_chain(session: Session, tenant_id: str, key: ChainKey | None = None) -> ChainReport:
    """Verify one tenant's whole chain as stored, streamed in batches of plain rows."""
    chain_key = key or resolve_chain_key()
    if session.get_bind().dialect.name == "postgresql":
        from recon.audit_verify import postgres_rows

        batches = postgres_rows(session.connection(), tenant_id, _CHAIN_BATCH)
        try:
            rows = cast("Iterable[StoredEntry]", batches)
            return verify_rows(tenant_id, rows, chain_key, details_text=True, time_text=True)
        finally:
            batches.close()  # a break ends the walk early: stop the reader, close the cursor
    columns = [cast_(c, Text) if c is AuditEntry.details else c for c in CHAIN_COLUMNS]
    rows = session.connection().execute(  # Core rows: no ORM object per entry
        select(*columns)  # the details as stored text: parsed only when the fast check fails
        .where(AuditEntry.tenant_id == tenant_id)
        .order_by(AuditEntry.id)
        .execution_options(yield_per=_CHAIN_BATCH)
    )
    try:
        flat = chain_iter.from_iterable(rows.partitions())  # a batch at a time, not row by row
        return verify_rows(
            tenant_id, cast("Iterable[StoredEntry]", flat), chain_key, details_text=True
        )
    finally:
        rows.close()  # a break ends the walk early: release the server-side cursor


# the anchors live in their own module; their names stay importable from here
from recon.audit_anchor import (  # noqa: E402  (it imports this module's names above)
    ANCHOR_FORMAT as ANCHOR_FORMAT,
)
from recon.audit_anchor import Anchor as Anchor  # noqa: E402
from recon.audit_anchor import AnchorCheck as AnchorCheck  # noqa: E402
from recon.audit_anchor import AnchorFileError as AnchorFileError  # noqa: E402
from recon.audit_anchor import anchor_for as anchor_for  # noqa: E402
from recon.audit_anchor import anchor_signature_problem as anchor_signature_problem  # noqa: E402
from recon.audit_anchor import check_anchor as check_anchor  # noqa: E402
from recon.audit_anchor import sign_anchor as sign_anchor  # noqa: E402
