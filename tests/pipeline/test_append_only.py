"""The engine's record is appended and audited, on SQLite and on PostgreSQL (as the application
role): the same window twice writes nothing, a changed decision is a reversal plus a new row,
an exception that no longer applies is closed with a reason, and every run, reversal and
closure reaches the audit log, the run's entry carrying the digest of the allocation set."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from connectors.sandbox.serve import run_in_thread
from connectors.sandbox.world import SandboxWorld
from flows.outcome import RunOutcome
from flows.reconcile import reconcile
from recon import audit
from recon.db import migrate
from recon.db.engine import make_engine
from recon.db.models import AuditEntry, Tenant
from recon.db.tenancy import admin_session, tenant_session
from recon.settings import get_settings
from tests.pipeline.conftest import AS_OF, TENANT, _register

WINDOW = (AS_OF - dt.timedelta(days=59), AS_OF)
ALLOCATION_COLUMNS = ("id", "allocation_key", "run_id", "transaction_ref", "invoice_id",
                      "amount_minor", "currency", "rule", "confidence", "decision", "origin",
                      "reverses_id", "created_by", "created_at")  # fmt: skip
EXCEPTION_COLUMNS = ("id", "exception_key", "kind", "transaction_ref", "invoice_id",
                     "amount_minor", "detail", "status", "version", "updated_at",
                     "closed_reason", "closed_by_run")  # fmt: skip


@dataclass
class Books:
    """The database a test runs the flow against: the owner's view and the application's."""

    owner: Engine
    app: Engine


@pytest.fixture(params=["sqlite", "postgresql"])
def books(
    request: pytest.FixtureRequest,
    sandbox: SandboxWorld,
    prefect_harness: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Books]:
    """The sandbox served; RECON_* pointing the flow at it and at a fresh migrated database
    (on PostgreSQL the flow connects as a member of `recon_app`, not as the owner)."""
    with run_in_thread(sandbox.build_app()) as server:
        if request.param == "sqlite":
            owner_url = app_url = f"sqlite:///{tmp_path / 'recon.db'}"
            owner = app = make_engine(owner_url)
            migrate.upgrade(owner)
        else:
            owner_url = request.getfixturevalue("pg_owner_url")
            owner = request.getfixturevalue("pg_owner_engine")
            app_url = request.getfixturevalue("pg_app_url")
            app = make_engine(app_url)
        monkeypatch.setenv("RECON_DATABASE_URL", app_url)
        monkeypatch.setenv("RECON_MIGRATION_DATABASE_URL", owner_url)
        monkeypatch.setenv("RECON_VAULT_ADDR", server.url)
        monkeypatch.setenv("RECON_VAULT_ROLE_ID", sandbox.credentials.vault_role_id)
        monkeypatch.setenv("RECON_VAULT_SECRET_ID", sandbox.credentials.vault_secret_id)
        get_settings.cache_clear()
        _register(owner, sandbox, server.url)
        yield Books(owner, app)
        app.dispose()
        owner.dispose()


def run() -> RunOutcome:
    return reconcile(tenant=TENANT, date_from=WINDOW[0], date_to=WINDOW[1])


def rows(engine: Engine, table: str, columns: tuple[str, ...]) -> dict[int, tuple[Any, ...]]:
    """Every row of `table` by id (read as the owner, so row-level security hides nothing)."""
    with engine.connect() as conn:
        result = conn.execute(text(f"SELECT {', '.join(columns)} FROM {table}"))
        return {row[0]: tuple(row) for row in result}


def recomputed_digest(engine: Engine) -> str:
    """The live allocation set's digest, recomputed from the table with SQL of its own."""
    with engine.connect() as conn:
        live = conn.execute(
            text(
                "SELECT allocation_key, transaction_ref, invoice_id, amount_minor, currency, "
                "rule, confidence, decision, origin FROM allocations a "
                "WHERE a.reverses_id IS NULL AND NOT EXISTS "
                "(SELECT 1 FROM allocations r WHERE r.reverses_id = a.id)"
            )
        ).all()
    lines = sorted("|".join(str(v) for v in row) + "\n" for row in live)
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def live_rows_of(allocations: dict[int, tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The live rows among `allocations` (neither a reversal nor reversed)."""
    reversed_ids = {r[11] for r in allocations.values() if r[11] is not None}
    return [r for i, r in allocations.items() if r[11] is None and i not in reversed_ids]


def live_rows(engine: Engine) -> list[tuple[Any, ...]]:
    return live_rows_of(rows(engine, "allocations", ALLOCATION_COLUMNS))


def natural(allocations: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows on their decision's columns: payment, invoice, amount, rule, confidence, decision."""
    return sorted(r[3:10] for r in allocations)


def entries(books: Books) -> list[AuditEntry]:
    with tenant_session(books.app, TENANT) as session:
        found = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        session.expunge_all()
        return found


def set_thresholds(books: Books, auto: int, review: int) -> None:
    with admin_session(books.owner) as session:
        tenant = session.get(Tenant, TENANT)
        assert tenant is not None
        tenant.settings = {**tenant.settings, "auto_threshold": auto, "review_threshold": review}


def test_the_same_window_twice_writes_nothing_and_moves_no_version(books: Books) -> None:
    first = run()
    allocations = rows(books.owner, "allocations", ALLOCATION_COLUMNS)
    exceptions = rows(books.owner, "exceptions", EXCEPTION_COLUMNS)
    assert len(allocations) == first.allocations_auto + first.allocations_review > 100
    assert exceptions and {row[8] for row in exceptions.values()} == {1}
    second = run()
    assert rows(books.owner, "allocations", ALLOCATION_COLUMNS) == allocations
    assert rows(books.owner, "exceptions", EXCEPTION_COLUMNS) == exceptions
    assert second.allocations_added == second.allocations_reversed == 0
    assert second.exceptions_opened == second.exceptions_closed == 0
    runs = [e for e in entries(books) if e.entity == "run"]
    assert [e.entity_id for e in runs] == [first.run_id, second.run_id]
    digest = recomputed_digest(books.owner)
    for entry in runs:
        assert entry.action == "run.completed"
        assert entry.details["allocation_digest"] == digest
        assert entry.details["live_allocations"] == len(allocations)
        assert entry.details["counts"]["allocations_auto"] == first.allocations_auto


def test_changed_decisions_are_reversed_and_closed_exceptions_kept_all_audited(
    books: Books,
) -> None:
    set_thresholds(books, auto=97, review=95)  # fewer automatic, fewer suggestions
    strict = run()
    after_strict = rows(books.owner, "allocations", ALLOCATION_COLUMNS)
    exceptions_strict = rows(books.owner, "exceptions", EXCEPTION_COLUMNS)
    set_thresholds(books, auto=90, review=50)  # the defaults again: decisions change
    default = run()
    allocations = rows(books.owner, "allocations", ALLOCATION_COLUMNS)
    exceptions = rows(books.owner, "exceptions", EXCEPTION_COLUMNS)

    # nothing written before was changed or deleted
    assert {i: allocations[i] for i in after_strict} == after_strict
    assert exceptions_strict.keys() <= exceptions.keys()
    # a changed decision: the old row reversed (negated, pointing at it), a new row appended
    reversals = {i: r for i, r in allocations.items() if r[11] is not None}
    assert len(reversals) == default.allocations_reversed > 0
    assert Counter(r[11] for r in reversals.values()).most_common(1)[0][1] == 1
    for reversal in reversals.values():
        original = after_strict[reversal[11]]
        assert reversal[5] == -original[5] and reversal[3:5] == original[3:5]
        assert reversal[2] == default.run_id
    reversed_ids = {r[11] for r in reversals.values()}
    live = [r for i, r in allocations.items() if r[11] is None and i not in reversed_ids]
    assert len({(r[3], r[4]) for r in live}) == len(live)
    assert sum(r[9] == "auto" for r in live) == default.allocations_auto
    # exceptions that no longer apply are closed with a reason, by this run
    closed = [r for r in exceptions.values() if r[7] == "closed"]
    assert len(closed) == default.exceptions_closed > 0
    assert all(r[10] and r[11] == default.run_id for r in closed)
    assert all(exceptions_strict[r[0]][7] == "open" for r in closed)

    # every decision reached the audit log: one entry per run, reversal and closure
    log = entries(books)
    by_action = Counter(e.action for e in log)
    assert by_action["run.completed"] == 2
    assert by_action["allocation.reversed"] == len(reversals)
    assert by_action["exception.closed"] == len(closed)
    keys = {r[1] for r in reversals.values()}
    assert {e.entity_id for e in log if e.action == "allocation.reversed"} == keys
    last = [e for e in log if e.entity == "run"][-1]
    assert last.entity_id == default.run_id
    assert last.details["allocation_digest"] == recomputed_digest(books.owner)
    assert last.details["counts"]["allocations_reversed"] == len(reversals)
    assert strict.run_id in {e.entity_id for e in log if e.entity == "run"}
    with tenant_session(books.app, TENANT) as session:
        assert audit.verify_chain(session, TENANT).ok

    # and the same window again, after reversals, writes nothing more
    again = run()
    assert rows(books.owner, "allocations", ALLOCATION_COLUMNS) == allocations
    assert rows(books.owner, "exceptions", EXCEPTION_COLUMNS) == exceptions
    assert again.allocations_added == again.allocations_reversed == 0

    # back to the strict settings: the first decisions return as new rows (A, B, then A again)
    # and the exceptions the engine closed are reopened, each with its audit entry
    set_thresholds(books, auto=97, review=95)
    back = run()
    assert back.allocations_reversed > 0 and back.exceptions_opened > 0
    assert natural(live_rows(books.owner)) == natural(live_rows_of(after_strict))
    reopened = rows(books.owner, "exceptions", EXCEPTION_COLUMNS)
    for row in closed:
        assert reopened[row[0]][7] == "open" and reopened[row[0]][10:] == (None, None)
        assert reopened[row[0]][8] > row[8]  # a real change moves the version
    log = entries(books)
    assert Counter(e.action for e in log)["exception.reopened"] == len(closed)
    assert Counter(e.action for e in log)["allocation.reversed"] == sum(
        r[11] is not None for r in rows(books.owner, "allocations", ALLOCATION_COLUMNS).values()
    )
