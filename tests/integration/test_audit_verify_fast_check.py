"""The per-walk fast check (`recon.audit_verify.FastKeyedCheck`) only ever says "verifies" for an
entry the full check verifies: a details value swapped for a JSON string of its canonical text,
padded JSON text, another key and another format all go to the full check, which decides."""

from __future__ import annotations

import json

from sqlalchemy import Text, cast, select

from recon import audit
from recon.audit_verify import FastKeyedCheck
from recon.db.models import AuditEntry
from recon.db.tenancy import tenant_session
from tests.integration.audit_helpers import TENANT, Backend, backend, tamper, verify, write_chain

__all__ = ["backend"]  # the fixture, imported for pytest


def _text_rows(b: Backend) -> list[tuple[object, ...]]:
    columns = [cast(c, Text) if c is AuditEntry.details else c for c in audit.CHAIN_COLUMNS]
    with tenant_session(b.app, TENANT) as session:
        found = session.execute(
            select(*columns).where(AuditEntry.tenant_id == TENANT).order_by(AuditEntry.id)
        ).all()
    return [tuple(r) for r in found]


def test_the_fast_check_agrees_with_the_full_check_on_every_stored_entry(backend: Backend) -> None:
    b = backend
    write_chain(b, 4)
    with tenant_session(b.app, TENANT) as session:
        audit.append(session, actor="a", action="x", entity="e", entity_id="1",
                     details={"note": "ü \n \"q\"", "n": [1, 2.5, None]})  # fmt: skip
    key = audit.resolve_chain_key()
    fast = FastKeyedCheck(key.chain, key.key_id, details_text=True)
    other = audit.ChainKey.from_secret("another-key-" + "x" * 40)
    wrong = FastKeyedCheck(other.chain, key.key_id, details_text=True)
    rows = _text_rows(b)
    for row in rows:
        parsed = (*row[:8], json.loads(str(row[8])), *row[9:])
        full = audit._entry_problem(parsed, key, keyed_before=True)
        assert fast(row) is (full is None) is True
        assert wrong(row) is False  # a wrong key never verifies
        # parsed details given as parsed are checked as values, never parsed again
        assert FastKeyedCheck(key.chain, key.key_id)(parsed) is True
        assert FastKeyedCheck(key.chain, key.key_id)((*row[:8], str(row[8]), *row[9:])) is False


def test_details_swapped_for_a_json_string_of_their_text_break_the_chain(backend: Backend) -> None:
    b = backend
    write_chain(b, 3)
    with tenant_session(b.app, TENANT) as session:
        audit.append(session, actor="a", action="x", entity="e", entity_id="s",
                     details={"a": 1})  # fmt: skip
    assert verify(b).ok
    # the JSON string '{"a":1}' is not the object {"a":1}: its canonical bytes differ
    tamper(b, ("UPDATE audit_log SET details = :d WHERE seq = 4", {"d": json.dumps('{"a":1}')}))
    report = verify(b)
    assert report.first_break is not None and report.first_break.seq == 4
    assert "changed after it was written" in report.first_break.reason


def test_padded_json_text_still_verifies_through_the_full_check(backend: Backend) -> None:
    b = backend
    write_chain(b, 3)
    with tenant_session(b.app, TENANT) as session:
        audit.append(session, actor="a", action="x", entity="e", entity_id="p",
                     details={"b": [1, 2], "a": "x"})  # fmt: skip
    padded_text = '  {"b": [1, 2],  "a": "x"}  '
    tamper(b, ("UPDATE audit_log SET details = :d WHERE seq = 4", {"d": padded_text}))
    key = audit.resolve_chain_key()
    padded = _text_rows(b)[3]
    assert FastKeyedCheck(key.chain, key.key_id, details_text=True)(padded) is False
    report = verify(b)
    assert report.ok and report.entries == 4
