"""Every run reaches the audit log when it closes, whatever its outcome: completed, failed, or
found crashed by the next run; each entry carries the digest of the live allocation set, on
SQLite and on PostgreSQL (as the application role)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select, text

from recon import audit
from recon.db.models import Allocation, AuditEntry
from recon.db.tenancy import admin_session, tenant_session
from recon.tenants import TenantSettings, add_tenant
from tasks.decisions import DIGEST_COLUMNS
from tasks.runs import finish_run, mark_crashed_runs, start_run

TENANT = "acme"
WINDOW = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))


@pytest.fixture(params=["sqlite", "postgresql"])
def engines(request: pytest.FixtureRequest) -> Iterator[tuple[Engine, Engine]]:
    """(owner, application) engines on a migrated database of each backend, with a tenant."""
    if request.param == "sqlite":
        owner = app = request.getfixturevalue("sqlite_engine")
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
    with admin_session(owner) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    yield owner, app


def _digest(owner: Engine) -> str:
    with owner.connect() as conn:
        live = conn.execute(
            text(
                f"SELECT {', '.join(DIGEST_COLUMNS)} FROM allocations a "
                "WHERE a.reverses_id IS NULL AND NOT EXISTS "
                "(SELECT 1 FROM allocations r WHERE r.reverses_id = a.id)"
            )
        ).all()
    lines = sorted("|".join(str(v) for v in row) + "\n" for row in live)
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def test_failed_and_crashed_runs_are_audited_with_the_allocation_digest(
    engines: tuple[Engine, Engine],
) -> None:
    owner, app = engines
    failed = start_run(app, TENANT, WINDOW, ["whmcs"])
    finish_run(app, TENANT, failed, status="failed", error="whmcs answered 500 five times")
    with tenant_session(app, TENANT) as session:
        session.add(
            Allocation(
                allocation_key="a" * 64, transaction_ref="bank:acc:t1", invoice_id="10001",
                amount_minor=1250, currency="EUR", rule="ref_amount_payer", confidence=99,
                decision="auto", run_id="someone",
            )
        )  # fmt: skip
    crashed = start_run(app, TENANT, WINDOW, ["whmcs"])
    assert mark_crashed_runs(app, TENANT) == 1
    with tenant_session(app, TENANT) as session:
        log = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.entity == "run").order_by(AuditEntry.seq)
            )
        )
        assert audit.verify_chain(session, TENANT).ok
    assert [(e.entity_id, e.action) for e in log] == [
        (failed, "run.failed"),
        (crashed, "run.crashed"),
    ]
    assert log[0].details["error"] == "whmcs answered 500 five times"
    assert log[0].details["live_allocations"] == 0 and log[1].details["live_allocations"] == 1
    assert log[1].details["allocation_digest"] == _digest(owner)
    assert log[0].details["allocation_digest"] == hashlib.sha256(b"").hexdigest()
