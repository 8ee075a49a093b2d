"""The audit log is append-only and any edit, deletion or reordering is detected."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from recon import audit
from recon.db.models import AuditEntry
from recon.db.tenancy import admin_session, tenant_session
from recon.tenants import TenantSettings, add_tenant

TENANT = "acme"


def _write_chain(engine: Engine, entries: int = 6) -> None:
    with admin_session(engine) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    for i in range(entries - 1):
        with tenant_session(engine, TENANT) as session:
            audit.append(
                session,
                actor="alice",
                action="allocation.approved",
                entity="allocation",
                entity_id=str(i),
                details={"amount_minor": 1000 + i, "note": "ünïcode ok"},
            )


def _verify(engine: Engine) -> audit.ChainReport:
    with tenant_session(engine, TENANT) as session:
        return audit.verify_chain(session, TENANT)


def _tamper(engine: Engine, *statements: str) -> None:
    """What someone with the owner's rights could do: drop the guard triggers, then edit."""
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
        conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        for statement in statements:
            conn.execute(text(statement))


def test_intact_chain_verifies(sqlite_engine: Engine) -> None:
    _write_chain(sqlite_engine)
    report = _verify(sqlite_engine)
    assert report.ok and report.entries == 6


def test_update_and_delete_are_refused(sqlite_engine: Engine) -> None:
    _write_chain(sqlite_engine, 2)
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
    sqlite_engine: Engine, statements: list[str], broken_seq: int, reason: str
) -> None:
    _write_chain(sqlite_engine)
    _tamper(sqlite_engine, *statements)
    report = _verify(sqlite_engine)
    assert not report.ok
    assert report.first_break is not None
    assert report.first_break.seq == broken_seq
    assert reason in report.first_break.reason


def test_rewriting_an_entry_with_a_fresh_hash_breaks_the_next_link(sqlite_engine: Engine) -> None:
    """A forger who recomputes the edited entry's own hash is caught by its successor."""
    _write_chain(sqlite_engine)
    with tenant_session(sqlite_engine, TENANT) as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.seq == 2)).one()
        payload = {**audit.entry_payload(entry), "actor": "mallory"}
        forged = audit.compute_hash(entry.prev_hash, payload)
    _tamper(
        sqlite_engine,
        f"UPDATE audit_log SET actor = 'mallory', entry_hash = '{forged}' WHERE seq = 2",
    )
    report = _verify(sqlite_engine)
    assert report.first_break is not None and report.first_break.seq == 3
    assert "previous entry" in report.first_break.reason


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
