"""Exceptions about a payout (or a WHMCS payment) carry that subject in their key: two missing
payouts are two rows, each naming its payout; the same result stored again changes nothing, and
a row keyed before subjects existed is recognised rather than duplicated (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from connectors.sandbox.world import SandboxWorld
from recon.db import migrate
from recon.db.engine import make_engine
from recon.db.models import ReconException
from recon.db.tenancy import tenant_session
from recon.matching.frames import MatchResult
from tasks.decisions import key_of
from tasks.exception_store import ExceptionChanges, store_exceptions
from tests.pipeline.conftest import TENANT, _register
from tests.unit.matching.helpers import invoice, payment, payout, run

COLUMNS = ("id", "exception_key", "kind", "transaction_ref", "invoice_id", "subject_ref",
           "amount_minor", "detail", "status", "version", "updated_at")  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def books(
    request: pytest.FixtureRequest, sandbox: SandboxWorld, tmp_path: Path
) -> Iterator[tuple[Engine, Engine]]:
    """(owner, application) engines on a fresh migrated database with the tenant."""
    if request.param == "sqlite":
        owner = app = make_engine(f"sqlite:///{tmp_path / 'recon.db'}")
        migrate.upgrade(owner)
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
    _register(owner, sandbox, "http://127.0.0.1:9")
    yield owner, app
    if request.param == "sqlite":
        owner.dispose()


def two_missing_payouts() -> MatchResult:
    """Bank days around two paid Stripe payouts that never reached the bank."""
    return run(
        [invoice(10234, "50.00")],
        [
            payment("b0", "1.00", "x", counterparty="x", booked_on="2026-03-01"),
            payment("b1", "1.00", "x", counterparty="x", booked_on="2026-04-30"),
        ],
        payouts=[
            payout("po_1", "49.30", arrival_on="2026-03-11"),
            payout("po_2", "49.30", arrival_on="2026-03-18"),
        ],
        lines=[],
    )


def store(app: Engine, result: MatchResult, run_id: str) -> ExceptionChanges:
    with tenant_session(app, TENANT) as session:
        return store_exceptions(session, TENANT, run_id, result, {"b0", "b1"})


def rows(owner: Engine, kind: str) -> dict[int, tuple[Any, ...]]:
    with owner.connect() as conn:
        found = conn.execute(
            text(f"SELECT {', '.join(COLUMNS)} FROM exceptions WHERE kind = :k"), {"k": kind}
        )
        return {row[0]: tuple(row) for row in found}


def test_the_engine_names_each_missing_payout() -> None:
    e = two_missing_payouts().exceptions
    missing = e[e["kind"] == "payout_missing"]
    assert sorted(missing["subject"]) == ["po_1", "po_2"]
    assert all(s in d for s, d in zip(missing["subject"], missing["detail"], strict=True))


def test_two_missing_payouts_are_two_rows_and_a_rerun_changes_nothing(
    books: tuple[Engine, Engine],
) -> None:
    owner, app = books
    result = two_missing_payouts()
    first = store(app, result, "run-1")
    stored = rows(owner, "payout_missing")
    assert len(stored) == 2
    assert sorted(r[5] for r in stored.values()) == ["po_1", "po_2"]
    for r in stored.values():
        assert f"payout {r[5]} " in r[7]
    assert len({r[1] for r in stored.values()}) == 2
    assert first.opened == len(result.exceptions)

    again = store(app, result, "run-2")
    assert rows(owner, "payout_missing") == stored
    assert (again.opened, again.changed, again.reopened, again.closed) == (0, 0, 0, 0)


def test_a_row_keyed_the_old_way_is_recognised_not_duplicated(
    books: tuple[Engine, Engine],
) -> None:
    owner, app = books
    result = two_missing_payouts()
    e = result.exceptions
    old = e[(e["kind"] == "payout_missing") & (e["subject"] == "po_2")].iloc[0]
    # what the engine stored before 0008: one row per kind, keyed without its payout
    with tenant_session(app, TENANT) as session:
        session.add(
            ReconException(
                tenant_id=TENANT,
                exception_key=key_of(TENANT, "payout_missing", None, None),
                run_id="run-0",
                kind="payout_missing",
                amount_minor=int(old["amount"]),
                currency=str(old["currency"]),
                detail=str(old["detail"]),
            )
        )
    before = rows(owner, "payout_missing")
    (legacy_id,) = before

    store(app, result, "run-1")
    stored = rows(owner, "payout_missing")
    assert len(stored) == 2
    assert legacy_id in stored
    assert stored[legacy_id][8] == "open"
    assert f"payout {stored[legacy_id][5]} " in stored[legacy_id][7]
    assert sorted(r[5] for r in stored.values()) == ["po_1", "po_2"]

    store(app, result, "run-2")
    assert rows(owner, "payout_missing") == stored


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_migration_names_the_subject_of_old_rows_and_downgrades(
    dialect: str, request: pytest.FixtureRequest, sandbox: SandboxWorld, tmp_path: Path
) -> None:
    """0008 reads the payout of rows stored before it from their detail, so the next run
    recognises them; its downgrade drops the column again."""
    if dialect == "sqlite":
        owner = app = make_engine(f"sqlite:///{tmp_path / 'recon.db'}")
        migrate.upgrade(owner, "0007")
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
        migrate.downgrade(owner, "0007")
    _register(owner, sandbox, "http://127.0.0.1:9")
    result = two_missing_payouts()
    e = result.exceptions
    old = e[(e["kind"] == "payout_missing") & (e["subject"] == "po_1")].iloc[0]
    with owner.begin() as conn:
        if dialect == "postgresql":
            conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": TENANT})
        conn.execute(
            text(
                "INSERT INTO exceptions (tenant_id, exception_key, run_id, kind, amount_minor, "
                "currency, detail, status, version) VALUES (:t, :k, 'run-0', 'payout_missing', "
                ":a, :c, :d, 'open', 1)"
            ),
            {
                "t": TENANT,
                "k": key_of(TENANT, "payout_missing", None, None),
                "a": int(old["amount"]),
                "c": str(old["currency"]),
                "d": str(old["detail"]),
            },
        )
    migrate.upgrade(owner)
    before = rows(owner, "payout_missing")
    assert [r[5] for r in before.values()] == ["po_1"]
    assert [r[9] for r in before.values()] == [1]

    store(app, result, "run-1")
    stored = rows(owner, "payout_missing")
    assert len(stored) == 2
    assert stored[next(iter(before))] == next(iter(before.values()))  # recognised, untouched
    assert sorted(r[5] for r in stored.values()) == ["po_1", "po_2"]

    migrate.downgrade(owner, "0007")
    with owner.connect() as conn:
        columns = conn.execute(text("SELECT * FROM exceptions")).keys()
    assert "subject_ref" not in columns
    if dialect == "sqlite":
        owner.dispose()
