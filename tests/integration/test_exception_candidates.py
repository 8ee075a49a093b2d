"""A runner-up's rule and confidence as data (issue 12, revision 0014), on SQLite and PostgreSQL:
the engine's store writes them, `show` reads them from the columns, a re-run changes nothing
(nor what a person decided), and the migration fills rows stored before it from their detail
without moving their version; its downgrade drops the columns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from recon.db import migrate
from recon.db.engine import make_engine
from recon.db.tenancy import admin_session, tenant_session
from recon.matching.frames import MatchResult
from recon.review.exceptions import assign, comment, exception_detail, resolve
from recon.tenants import TenantSettings, add_tenant
from tasks.exception_store import ExceptionChanges, exception_key, store_exceptions
from tests.integration.test_db_roles import OwnedDatabase
from tests.integration.test_db_roles import owned_database as owned_database  # the fixture
from tests.people import make_user
from tests.unit.matching.helpers import invoice, payment, run

TENANT, OTHER = "acme", "globex"
FIN = "fin@acme.test"
WINDOW = {"t1", "t2", "t5"}
COLUMNS = ("id", "tenant_id", "kind", "transaction_ref", "invoice_id", "detail", "rule",
           "confidence", "status", "assignee", "resolution_kind", "version", "updated_at")  # fmt: skip


def ambiguous_payments() -> MatchResult:
    """Three open invoices of one amount for clients named alike: the first payment gets a
    suggestion and two runners-up; the second also competes with it for the suggested invoice;
    a payment naming nothing stays unmatched."""
    return run(
        [
            invoice(10234, "24.90", client_id="1"),
            invoice(10235, "24.90", client_id="2"),
            invoice(10236, "24.90", client_id="3"),
        ],
        [
            payment("t1", "24.90", "", counterparty="John Smith"),
            payment("t2", "24.90", "", counterparty="John Smith", booked_on="2026-03-11"),
            payment("t5", "7.00", "hello", counterparty="Nobody"),
        ],
    )


def engine_rows(result: MatchResult) -> list[dict[str, Any]]:
    """The engine's exceptions with rule and confidence as the store should keep them."""
    out = []
    for row in result.exceptions.to_dict("records"):
        rule, confidence = row["rule"], row["confidence"]
        out.append(
            {
                "kind": row["kind"],
                "ref": row["transaction_id"],
                "invoice": str(row["invoice_id"]) if row["invoice_id"] else None,
                "amount": int(row["amount"]),
                "currency": row["currency"],
                "detail": row["detail"],
                "rule": None if isinstance(rule, float) else rule,  # NaN where none
                "confidence": None if confidence is None or str(confidence) == "<NA>" else
                int(confidence),
            }
        )  # fmt: skip
    return out


def _owner_and_app(request: pytest.FixtureRequest, dialect: str, tmp_path: Path) -> tuple[Engine, Engine]:  # fmt: skip
    if dialect == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'recon.db'}")
        return engine, engine
    return request.getfixturevalue("pg_owner_engine"), request.getfixturevalue("pg_app_engine")


def _add_tenants(owner: Engine) -> None:
    with admin_session(owner) as session:
        for tenant in (TENANT, OTHER):
            add_tenant(session, tenant, tenant.title(), TenantSettings(), actor="test")


@pytest.fixture(params=["sqlite", "postgresql"])
def books(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """(owner, application) engines on a database at head with the tenants and a finance
    user."""
    owner, app = _owner_and_app(request, request.param, tmp_path)
    if request.param == "sqlite":
        migrate.upgrade(owner)
    _add_tenants(owner)
    make_user(app, FIN, "finance", (TENANT,))
    yield owner, app
    if request.param == "sqlite":
        owner.dispose()


def store(app: Engine, result: MatchResult, run_id: str) -> ExceptionChanges:
    with tenant_session(app, TENANT) as session:
        return store_exceptions(session, TENANT, run_id, result, WINDOW)


def stored(owner: Engine) -> dict[int, dict[str, Any]]:
    with owner.connect() as conn:
        rows = conn.execute(text(f"SELECT {', '.join(COLUMNS)} FROM exceptions ORDER BY id"))
        return {row[0]: dict(zip(COLUMNS, row, strict=True)) for row in rows}


def _id_of(owner: Engine, ref: str, invoice_id: str, wording: str) -> int:
    return next(
        r["id"]
        for r in stored(owner).values()
        if (r["transaction_ref"], r["invoice_id"]) == (ref, invoice_id)
        and r["detail"].startswith(wording)
    )


def test_runners_up_come_through_show_with_the_engines_rule_and_confidence(
    books: tuple[Engine, Engine],
) -> None:
    owner, app = books
    result = ambiguous_payments()
    expected = engine_rows(result)
    runners = [e for e in expected if e["detail"].startswith("another candidate")]
    assert len(runners) == 4 and all(e["rule"] and e["confidence"] for e in runners)
    assert store(app, result, "run-1").opened == len(expected)

    kept = {(r["transaction_ref"], r["invoice_id"], r["detail"]): (r["rule"], r["confidence"])
            for r in stored(owner).values()}  # fmt: skip
    assert kept == {
        (e["ref"], e["invoice"], e["detail"]): (e["rule"], e["confidence"]) for e in expected
    }  # fmt: skip  (none on the other rows)

    for ref in ("t1", "t2"):
        shown = exception_detail(app, FIN, TENANT, _id_of(owner, ref, "10236", "another"))
        assert sorted((r.invoice_id, r.rule, r.confidence) for r in shown.runners_up) == sorted(
            (e["invoice"], e["rule"], e["confidence"])
            for e in expected
            if e["ref"] == ref and e["kind"] == "ambiguous"
        )
    # t2's row about the invoice t1 was suggested names no candidate's rule
    competes = exception_detail(app, FIN, TENANT, _id_of(owner, "t2", "10234", "competes"))
    assert ("10234", None, None) in [
        (r.invoice_id, r.rule, r.confidence) for r in competes.runners_up
    ]


def test_a_rerun_changes_nothing_nor_what_a_person_decided(books: tuple[Engine, Engine]) -> None:
    owner, app = books
    result = ambiguous_payments()
    store(app, result, "run-1")
    first = _id_of(owner, "t1", "10235", "another")
    second = _id_of(owner, "t2", "10236", "another")
    assign(app, FIN, TENANT, first, FIN, expected_version=1)
    resolve(app, FIN, TENANT, second, "other", "a person looked", expected_version=1)
    comment(app, FIN, TENANT, first, "asked the client")
    before = stored(owner)
    assert before[first]["assignee"] == FIN and before[first]["version"] == 2
    assert before[second]["status"] == "resolved"

    again = store(app, result, "run-2")
    assert (again.opened, again.changed, again.reopened, again.closed) == (0, 0, 0, 0)
    assert stored(owner) == before


def _insert_before_0014(owner: Engine, dialect: str, tenant: str, rows: list[dict[str, Any]]) -> None:  # fmt: skip
    """Rows as the engine's store wrote them before 0014 (no rule, no confidence)."""
    with owner.begin() as conn:
        if dialect == "postgresql":
            conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})
        conn.execute(
            text(
                "INSERT INTO exceptions (tenant_id, exception_key, run_id, kind, transaction_ref, "
                "invoice_id, amount_minor, currency, detail, status, resolution_kind, "
                "resolved_by, version) VALUES (:t, :k, 'run-0', :kind, :ref, :invoice, :amount, "
                ":currency, :detail, :status, :resolution_kind, :resolved_by, :version)"
            ),
            [
                {
                    "t": tenant,
                    "k": exception_key(tenant, r["kind"], r["ref"], r["invoice"], None),
                    **{k: r[k] for k in ("kind", "ref", "invoice", "amount", "currency", "detail")},
                    "status": r.get("status", "open"),
                    "resolution_kind": r.get("resolution_kind"),
                    "resolved_by": r.get("resolved_by"),
                    "version": r.get("version", 1),
                }
                for r in rows
            ],
        )


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_migration_reads_old_rows_details_and_a_rerun_then_changes_nothing(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    owner, app = _owner_and_app(request, dialect, tmp_path)
    if dialect == "sqlite":
        migrate.upgrade(owner, "0013")
    else:
        migrate.downgrade(owner, "0013")  # head, then 0014's downgrade
    _add_tenants(owner)
    result = ambiguous_payments()
    expected = engine_rows(result)
    old = [dict(e) for e in expected]
    resolved = next(e for e in old if e["ref"] == "t2" and e["invoice"] == "10235")
    resolved.update(status="resolved", resolution_kind="other", resolved_by=FIN, version=3)
    _insert_before_0014(owner, dialect, TENANT, old)
    # another tenant's runner-up ("and others"), and a wording the migration does not know
    theirs = {"kind": "ambiguous", "ref": "g1", "amount": 5000, "currency": "EUR"}
    _insert_before_0014(owner, dialect, OTHER, [
        {**theirs, "invoice": "7", "detail": "another candidate: invoice 7 and others, "
                                             "confidence 64 (name_fee)"},
        {**theirs, "invoice": "8", "detail": "another candidate: invoice 8 (name_fee, 64)"},
    ])  # fmt: skip

    migrate.upgrade(owner)
    after = stored(owner)
    by_detail = {(r["tenant_id"], r["transaction_ref"], r["detail"]): r for r in after.values()}
    for e in expected:  # filled from the detail as the engine would write them now
        row = by_detail[(TENANT, e["ref"], e["detail"])]
        assert (row["rule"], row["confidence"]) == (e["rule"], e["confidence"])
    assert [(r["invoice_id"], r["rule"], r["confidence"], r["version"]) for r in after.values()
            if r["tenant_id"] == OTHER] == [("7", "name_fee", 64, 1), ("8", None, None, 1)]  # fmt: skip
    assert sorted(r["version"] for r in after.values() if r["tenant_id"] == TENANT) == sorted(
        e.get("version", 1) for e in old
    )  # the backfill moves no version

    make_user(app, FIN, "finance", (TENANT,))
    again = store(app, result, "run-1")
    assert (again.opened, again.changed, again.reopened, again.closed) == (0, 0, 0, 0)
    assert stored(owner) == after
    shown = exception_detail(app, FIN, TENANT, _id_of(owner, "t1", "10235", "another"))
    assert {(r.invoice_id, r.rule, r.confidence) for r in shown.runners_up} == {
        (e["invoice"], e["rule"], e["confidence"])
        for e in expected
        if e["ref"] == "t1" and e["kind"] == "ambiguous"
    }

    migrate.downgrade(owner, "0013")
    with owner.connect() as conn:
        columns = set(conn.execute(text("SELECT * FROM exceptions")).keys())
    assert not {"rule", "confidence"} & columns
    assert "detail" in columns
    if dialect == "sqlite":
        owner.dispose()


@pytest.mark.postgres
def test_the_backfill_names_each_tenant_under_forced_row_level_security(
    owned_database: OwnedDatabase,
) -> None:
    """Migrated by a NOSUPERUSER NOBYPASSRLS owner, as production should be: the owner sees a
    tenant's rows only once the migration names that tenant."""
    owner = make_engine(owned_database.owner_url)
    try:
        migrate.downgrade(owner, "0013")
        _add_tenants(owner)
        row = {"kind": "ambiguous", "ref": "t1", "amount": 2490, "currency": "EUR"}
        for tenant, confidence in ((TENANT, 82), (OTHER, 64)):
            _insert_before_0014(owner, "postgresql", tenant, [
                {**row, "invoice": "10235", "detail": "another candidate: invoice 10235, "
                                                      f"confidence {confidence} (name_fee)"},
            ])  # fmt: skip
        with owner.connect() as conn:  # no tenant named: the owner sees nothing
            assert conn.execute(text("SELECT count(*) FROM exceptions")).scalar_one() == 0
        migrate.upgrade(owner)
        found = {}
        for tenant in (TENANT, OTHER):
            with owner.begin() as conn:
                conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})
                found[tenant] = conn.execute(
                    text("SELECT rule, confidence, version FROM exceptions")
                ).all()
        assert found == {TENANT: [("name_fee", 82, 1)], OTHER: [("name_fee", 64, 1)]}
    finally:
        owner.dispose()
