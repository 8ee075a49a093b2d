"""The audit log is append-only and keyed: any edit, deletion, reordering, forgery or emptying by
whoever owns the table is detected, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, insert, text
from sqlalchemy.exc import DBAPIError

from recon import audit
from recon.db import migrate
from recon.db.base import utcnow
from recon.db.models import AuditEntry
from recon.db.tenancy import admin_session, tenant_session
from recon.errors import ConfigError
from recon.tenants import TenantSettings, add_tenant
from tests.integration.audit_helpers import (
    TENANT,
    Backend,
    backend,
    rechain_with_sha256,
    stored_entries,
    tamper,
    verify,
    write_chain,
)

__all__ = ["backend"]  # the fixture, imported for pytest


def test_intact_chain_verifies(backend: Backend) -> None:
    write_chain(backend)
    report = verify(backend)
    assert report.ok and report.entries == 6 and report.head_seq == 6


def test_update_and_delete_are_refused(sqlite_engine: Engine) -> None:
    with admin_session(sqlite_engine) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), sqlite_engine.begin() as conn:
            conn.execute(text(statement))


@pytest.mark.parametrize(
    ("statements", "broken_seq", "reason"),
    [
        (["UPDATE audit_log SET actor = 'mallory' WHERE seq = 3"], 3, "changed"),
        (
            ["UPDATE audit_log SET details = '{\"amount_minor\": 1}' WHERE seq = 4"],
            4,
            "changed",
        ),
        (["DELETE FROM audit_log WHERE seq = 2"], 3, "missing or moved"),
        (
            [
                "UPDATE audit_log SET seq = -1 WHERE seq = 2",
                "UPDATE audit_log SET seq = 2 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = -1",
            ],
            3,
            "missing or moved",
        ),
    ],
    ids=["edit-actor", "edit-details", "delete", "reorder"],
)
def test_tampering_is_detected_at_the_first_broken_entry(
    backend: Backend, statements: list[str], broken_seq: int, reason: str
) -> None:
    write_chain(backend)
    tamper(backend, *statements)
    report = verify(backend)
    assert not report.ok
    assert report.first_break is not None
    assert report.first_break.seq == broken_seq
    assert reason in report.first_break.reason


def test_an_owner_who_recomputes_the_hashes_is_caught_at_the_edited_entry(
    backend: Backend,
) -> None:
    """The forgery that used to pass: edit entry 3, then recompute plain SHA-256 hashes of it and
    every entry after it. Without the chain key the edited entry's hash cannot be made."""
    write_chain(backend)
    forged = rechain_with_sha256(stored_entries(backend), 3, actor="mallory")
    tamper(backend, *forged)
    report = verify(backend)
    assert report.first_break is not None, "a rewritten chain verified"
    assert report.first_break.seq == 3
    assert "changed after it was written" in report.first_break.reason
    assert f"tenant {TENANT}: entry seq 3" in str(report.first_break)


def test_rewriting_the_chain_as_unkeyed_entries_is_caught(backend: Backend) -> None:
    """The same forger also marks every entry as written before the chain was keyed."""
    write_chain(backend)
    entries = stored_entries(backend)
    for entry in entries:
        entry.chain_version, entry.key_id = audit.CHAIN_SHA256, None
    forged = rechain_with_sha256(entries, 1, chain_version=1, key_id=None)
    tamper(backend, "UPDATE audit_log SET chain_version = 1, key_id = NULL", *forged)
    report = verify(backend)
    assert report.first_break is not None and report.first_break.kind == "unkeyed"
    assert report.first_break.seq == 1 and "not keyed" in report.first_break.reason


def test_an_emptied_chain_is_broken(backend: Backend) -> None:
    write_chain(backend, 3)
    tamper(backend, "DELETE FROM audit_log")
    report = verify(backend)
    assert not report.ok and report.entries == 0
    assert report.first_break is not None and report.first_break.kind == "empty"
    assert "no audit entries" in str(report.first_break)


@pytest.mark.postgres
def test_truncate_is_refused_on_postgresql_even_to_the_owner(
    pg_owner_engine: Engine, pg_app_engine: Engine
) -> None:
    with admin_session(pg_owner_engine) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    for statement in ("TRUNCATE audit_log", "TRUNCATE tenants CASCADE"):
        with pytest.raises(DBAPIError, match="append-only"), pg_owner_engine.begin() as conn:
            conn.execute(text(statement))
    with pytest.raises(DBAPIError, match="permission denied"), pg_app_engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_log"))
    with tenant_session(pg_app_engine, TENANT) as session:
        assert audit.verify_chain(session, TENANT).entries == 1


def test_a_chain_checked_with_another_key_names_the_key(backend: Backend) -> None:
    write_chain(backend, 2)
    other = audit.ChainKey.from_secret("another-key-" + "x" * 40)
    with tenant_session(backend.app, TENANT) as session:
        report = audit.verify_chain(session, TENANT, other)
    assert report.first_break is not None and report.first_break.seq == 1
    assert f"configured key (id {other.key_id})" in report.first_break.reason


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="audit_chain_key is too short"):
        audit.ChainKey.from_secret("short")


@pytest.mark.parametrize(
    "url_fixture", ["sqlite_url", pytest.param("pg_owner_url", marks=pytest.mark.postgres)]
)
def test_entries_from_before_the_key_verify_once_a_keyed_entry_seals_them(
    url_fixture: str, request: pytest.FixtureRequest
) -> None:
    """The migration path: unkeyed (format 1) entries written at revision 0002 verify only as a
    prefix that a keyed entry follows; an unkeyed entry after a keyed one is a forgery."""
    from recon.db.engine import make_engine

    url: str = request.getfixturevalue(url_fixture)
    engine = make_engine(url)
    migrate.upgrade(engine, "0002")
    columns = ("tenant_id", "seq", "occurred_at", "actor", "action", "entity", "entity_id")
    prev_hash, rows = audit.GENESIS_HASH, []
    for seq in (1, 2):
        entry = AuditEntry(
            tenant_id=TENANT, seq=seq, occurred_at=utcnow(), actor="old", action="legacy",
            entity="tenant", entity_id=TENANT, details={"n": seq}, prev_hash=prev_hash,
        )  # fmt: skip
        entry.entry_hash = audit.compute_hash(prev_hash, audit.entry_payload(entry))
        prev_hash = entry.entry_hash
        rows.append(
            {c: getattr(entry, c) for c in (*columns, "details", "prev_hash", "entry_hash")}
        )
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name, settings, active) VALUES ('acme', 'Acme', '{}', TRUE)"))  # fmt: skip
        conn.execute(insert(AuditEntry.__table__), rows)
    migrate.upgrade(engine)
    with tenant_session(engine, TENANT) as session:
        report = audit.verify_chain(session, TENANT)
    assert report.first_break is not None and report.first_break.kind == "unkeyed"
    assert report.first_break.seq == 1 and "recon audit seal" in report.first_break.reason
    with tenant_session(engine, TENANT) as session:
        audit.append(session, actor="ops", action="audit.chain_keyed", entity="audit_log",
                     entity_id=TENANT)  # fmt: skip
    with tenant_session(engine, TENANT) as session:
        assert audit.verify_chain(session, TENANT).ok
    # an unkeyed entry appended after the seal is refused
    head = stored_entries(Backend("any", engine, engine, url))[-1]
    forged = AuditEntry(
        tenant_id=TENANT, seq=4, occurred_at=utcnow(), actor="mallory", action="legacy",
        entity="tenant", entity_id=TENANT, details={}, prev_hash=head.entry_hash,
    )  # fmt: skip
    forged.entry_hash = audit.compute_hash(head.entry_hash, audit.entry_payload(forged))
    with engine.begin() as conn:
        conn.execute(
            insert(AuditEntry.__table__),
            [{c: getattr(forged, c) for c in (*columns, "details", "prev_hash", "entry_hash")}],
        )
    with tenant_session(engine, TENANT) as session:
        report = audit.verify_chain(session, TENANT)
    assert report.first_break is not None and report.first_break.seq == 4
    assert "unkeyed entry after keyed ones" in report.first_break.reason
    engine.dispose()


def test_downgrade_below_0003_refuses_to_strand_keyed_entries(backend: Backend) -> None:
    with admin_session(backend.owner) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    with pytest.raises(ConfigError, match="keyed with audit_chain_key"):
        migrate.downgrade(backend.owner, "0002")
    assert migrate.current_revision(backend.owner) == migrate.head_revision()
    assert verify(backend).ok


@pytest.mark.postgres
def test_concurrent_writers_keep_one_valid_chain(
    pg_owner_engine: Engine, pg_app_engine: Engine
) -> None:
    with admin_session(pg_owner_engine) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(5):
                with tenant_session(pg_app_engine, TENANT) as session:
                    audit.append(
                        session, actor=f"w{n}", action="x", entity="e", entity_id=f"{n}-{i}"
                    )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with tenant_session(pg_app_engine, TENANT) as session:
        report = audit.verify_chain(session, TENANT)
    assert report.ok and report.entries == 41


@pytest.mark.postgres
def test_app_role_cannot_update_or_delete_audit_entries(
    pg_owner_engine: Engine, pg_app_engine: Engine
) -> None:
    with admin_session(pg_owner_engine) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="permission denied"), pg_app_engine.begin() as conn:
            conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": TENANT})
            conn.execute(text(statement))
    with pytest.raises(DBAPIError, match="append-only"), pg_owner_engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": TENANT})
        conn.execute(text("UPDATE audit_log SET actor = 'mallory'"))
