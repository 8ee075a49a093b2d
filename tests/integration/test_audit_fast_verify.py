"""The streamed chain walk (`verify_chain` over plain rows, payload written field by field) gives
the same canonical bytes and the same verdicts as the per-entry ORM path it replaced, on SQLite and
PostgreSQL: unicode, nested details, None, big integers, floats, escapes, naive and zoned times,
unkeyed (format 1) entries and odd field types."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import pytest
from sqlalchemy import select

from recon import audit
from recon.db.models import AuditEntry
from recon.db.tenancy import tenant_session
from tests.integration.audit_helpers import (
    TENANT,
    Backend,
    backend,
    stored_entries,
    tamper,
    verify,
    write_chain,
)

__all__ = ["backend"]  # the fixture, imported for pytest

KEY = audit.ChainKey.from_secret("fast-path-test-key-" + "k" * 40)

DETAILS: list[Any] = [
    {},
    {"note": "ünïcode ✓ 日本語 \U0001f600", "amount_minor": 12_345},
    {"nested": {"b": [1, 2, {"z": None, "a": True}], "a": {"y": "x"}}, "list": [None, False]},
    {"big": 2**70, "neg": -(2**64) - 1, "zero": 0, "float": 1.5, "tiny": 1e-300, "huge": 1e300},
    {"quote": 'say "hi"\\ \n\t\r\b\f \u2028 \x00 \x1f', "/": "a/b", "</script>": "<>&'"},
    {"Z": 1, "a": 2, "B": 3, "é": 4, "e": 5, "10": 6, "9": 7, "": 8},
    {"none": None, "empty_list": [], "empty_obj": {}, "str_num": "1.0"},
    {"when": "2026-01-01T00:00:00+00:00", "deep": [[[[{"k": [1.25, -0.0]}]]]]},
]
TIMES = [
    dt.datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 1, 12, 30, 45),  # naive, as SQLite gives back
    dt.datetime(2026, 3, 1, 14, 30, 45, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.datetime(999, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
]


def _entry(i: int, details: Any, at: dt.datetime, version: int | None, key_id: str | None) -> Any:
    return AuditEntry(
        id=i, tenant_id=f"tenant-{i} ü", seq=i + 1, occurred_at=at, actor=f'al"ice {i} ✓',
        action="allocation.approved", entity="allocation", entity_id=f"id\\{i}\n",
        details=details, prev_hash="0" * 64, entry_hash="", chain_version=version, key_id=key_id,
    )  # fmt: skip


def _old_bytes(entry: AuditEntry) -> bytes:
    return audit.canonical_json(audit.entry_payload(entry)).encode("utf-8")


def test_stored_payload_is_byte_for_byte_the_canonical_json_of_the_payload() -> None:
    checked = 0
    for version, key_id in ((2, KEY.key_id), (2, None), (1, None), (None, None), (3, "x" * 16)):
        for i, details in enumerate(DETAILS):
            for at in TIMES:
                entry = _entry(i, details, at, version, key_id)
                old = _old_bytes(entry)
                assert audit.stored_payload(audit.stored_entry(entry)) == old
                # what the database gives back: details through JSON text
                row = audit.stored_entry(entry)
                reloaded = (*row[:8], json.loads(json.dumps(details)), *row[9:])
                assert audit.stored_payload(reloaded) == old
                checked += 1
    assert checked == 5 * len(DETAILS) * len(TIMES)


@pytest.mark.parametrize(
    "changes",
    [
        {"seq": True},  # a bool where the column gives an int
        {"actor": None},
        {"details": {"when": dt.date(2026, 1, 2), "set": "x"}},  # default=str in both paths
        {"details": "a bare string"},
        {"details": [1, "two", None]},
        {"details": None},
        {"chain_version": 2.0},
        {"entity_id": 7},
    ],
)
def test_fields_of_unexpected_types_give_the_same_bytes(changes: dict[str, Any]) -> None:
    entry = _entry(1, {"a": 1}, TIMES[0], 2, KEY.key_id)
    for name, value in changes.items():
        setattr(entry, name, value)
    assert audit.stored_payload(audit.stored_entry(entry)) == _old_bytes(entry)


def _old_verdict(b: Backend, key: audit.ChainKey) -> audit.ChainReport:
    """The walk as it was: ORM entries, the payload dict, canonical_json, hmac.new."""
    with tenant_session(b.app, TENANT) as session:
        entries = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.tenant_id == TENANT).order_by(AuditEntry.id)
            )
        )
    prev, seq = audit.GENESIS_HASH, 1
    for entry in entries:
        payload = audit.entry_payload(entry)
        keyed = (entry.chain_version or 1) == audit.CHAIN_HMAC
        expected = (
            audit.compute_keyed_hash(key, entry.prev_hash, payload)
            if keyed
            else audit.compute_hash(entry.prev_hash, payload)
        )
        if entry.seq != seq or entry.prev_hash != prev or expected != entry.entry_hash:
            return audit.ChainReport(
                TENANT,
                seq,
                prev,
                audit.ChainBreak(TENANT, entry.seq, entry.id, "old path"),
                seq - 1,
            )
        prev, seq = entry.entry_hash, seq + 1
    return audit.ChainReport(TENANT, seq - 1, prev, None, seq - 1)


def test_a_chain_with_awkward_details_verifies_as_the_old_walk_says(backend: Backend) -> None:
    write_chain(backend, 2)
    with tenant_session(backend.app, TENANT) as session:
        for i, details in enumerate(DETAILS):
            audit.append(
                session, actor=f"ü{i}", action="x", entity="e", entity_id=str(i), details=details
            )
    key = audit.resolve_chain_key()
    with tenant_session(backend.app, TENANT) as session:
        new = audit.verify_chain(session, TENANT, key)
    old = _old_verdict(backend, key)
    assert new.ok and old.ok and new.entries == 2 + len(DETAILS)
    assert (new.entries, new.head_seq, new.head_hash) == (old.entries, old.head_seq, old.head_hash)
    with tenant_session(backend.app, TENANT) as session:  # another key: both break at seq 1
        wrong = audit.verify_chain(session, TENANT, KEY)
    assert wrong.first_break is not None and wrong.first_break.seq == 1
    old_wrong = _old_verdict(backend, KEY).first_break
    assert old_wrong is not None and old_wrong.seq == 1


def test_the_stored_rows_hash_to_the_stored_hashes(backend: Backend) -> None:
    """Every stored entry's own hash is recomputed from the streamed row (fast bytes)."""
    write_chain(backend, 3)
    with tenant_session(backend.app, TENANT) as session:
        for i, details in enumerate(DETAILS):
            audit.append(session, actor="a", action="x", entity="e", entity_id=str(i),
                         details=details)  # fmt: skip
    key = audit.resolve_chain_key()
    with tenant_session(backend.app, TENANT) as session:
        rows = session.execute(
            select(*audit.CHAIN_COLUMNS)
            .where(AuditEntry.tenant_id == TENANT)
            .order_by(AuditEntry.id)
        ).all()
    entries = {e.id: e for e in stored_entries(backend)}
    for row in rows:
        payload = audit.stored_payload(tuple(row))  # type: ignore[arg-type]
        assert payload == _old_bytes(entries[row.id])
        digest = hmac.new(key.chain, row.prev_hash.encode("ascii") + payload, hashlib.sha256)
        assert digest.hexdigest() == row.entry_hash
    report = verify(backend)
    assert report.ok and report.entries == 3 + len(DETAILS)


def test_an_edited_nested_value_breaks_the_streamed_walk_where_the_old_one_breaks(
    backend: Backend,
) -> None:
    write_chain(backend, 3)
    with tenant_session(backend.app, TENANT) as session:
        audit.append(session, actor="a", action="x", entity="e", entity_id="n",
                     details={"nested": {"b": [1, 2], "a": "ü"}})  # fmt: skip
        audit.append(session, actor="a", action="x", entity="e", entity_id="m")
    # same JSON value, different text: the canonical bytes do not change, so it still verifies
    tamper(backend, "UPDATE audit_log SET details = '{\"nested\": {\"a\": \"ü\", \"b\": [1,2]}}' "
           "WHERE seq = 4")  # fmt: skip
    assert verify(backend).ok
    key = audit.resolve_chain_key()
    assert _old_verdict(backend, key).ok
    tamper(backend, "UPDATE audit_log SET details = '{\"nested\": {\"a\": \"u\", \"b\": [1,2]}}' "
           "WHERE seq = 4")  # fmt: skip
    report = verify(backend)
    old = _old_verdict(backend, key)
    assert report.first_break is not None and old.first_break is not None
    assert report.first_break.seq == old.first_break.seq == 4
    assert "changed after it was written" in report.first_break.reason


STORED_TIMES = [  # (what is stored, the session time zone it is written in)
    ("2026-03-01 12:30:45+00", "UTC"),  # microsecond 0
    ("2026-03-01 12:30:45.000001+00", "UTC"),
    ("2026-03-01 14:30:45.123456+02", "Europe/Berlin"),  # another zone, another session zone
    ("2026-10-25 02:30:00", "Europe/Berlin"),  # no offset: read in the session's zone (DST end)
    ("2026-07-01 23:59:59.999999", "Asia/Kolkata"),  # a day earlier in UTC
    ("0999-01-02 03:04:05.5-05:30", "UTC"),  # a year below 1000
    ("0001-01-01 00:00:00+00", "UTC"),  # the first instant Python's datetime holds
    ("9999-12-31 23:59:59.999999+00", "UTC"),  # and its last
]


@pytest.mark.postgres
def test_the_servers_time_text_is_pythons_for_every_stored_time(
    pg_owner_engine: Any, pg_app_engine: Any, pg_app_url: str
) -> None:
    """`postgres_rows` gives each entry's time as the server's text; it is byte for byte what
    `_timestamp` writes of the stored value, whatever zone it was written in, and the walk's
    verdict on those entries is the full check's."""
    from recon.audit_verify import postgres_rows, stored_time

    b = Backend("postgres", pg_owner_engine, pg_app_engine, pg_app_url)
    write_chain(b, len(STORED_TIMES) + 1)
    statements: list[Any] = []
    for i, (at, zone) in enumerate(STORED_TIMES):
        statements.append(f"SET LOCAL TIME ZONE '{zone}'")
        update = "UPDATE audit_log SET occurred_at = CAST(:at AS timestamptz) WHERE seq = :seq"
        statements.append((update, {"at": at, "seq": i + 2}))
    tamper(b, *statements)
    python = {e.seq: audit._timestamp(e.occurred_at) for e in stored_entries(b)}
    with tenant_session(b.app, TENANT) as session:
        rows = list(postgres_rows(session.connection(), TENANT, 3))  # several batches
    assert [row[2] for row in rows] == sorted(python)
    for row in rows:
        assert row[3] == python[row[2]]
        assert audit._timestamp(stored_time(row)) == row[3]
    assert {python[i + 2][:4] for i in range(len(STORED_TIMES))} >= {"0999", "0001", "9999"}
    report = verify(b)  # the times changed: the first changed entry breaks, as the full check says
    assert report.first_break is not None and report.first_break.seq == 2
    assert "changed after it was written" in report.first_break.reason
