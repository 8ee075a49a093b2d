"""Exceptions about a payout or a WHMCS payment (payout_missing, payout_shortfall,
payout_incomplete, unbacked_payment) that stop applying are closed, with a reason and an audit
entry, by the next run that judges their subject; one it cannot judge stays open (SQLite,
PostgreSQL application role)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from connectors.sandbox.world import SandboxWorld
from recon.db import migrate
from recon.db.engine import make_engine
from recon.db.models import AuditEntry
from recon.db.tenancy import tenant_session
from recon.matching import MatchConfig, MatchResult, match
from recon.matching.frames import TRANSACTION_COLUMNS
from recon.matching.validate import prepare_transactions
from tasks.exception_store import store_exceptions
from tests.pipeline.conftest import TENANT, _register
from tests.unit.matching.helpers import FORMAT, frame, inputs, invoice, payment, payout, recorded


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


def bank(name: str, day: str) -> dict[str, str]:
    return payment(name, "-1.00", "rent", counterparty="Landlord", booked_on=day)


BANK_DAYS = [bank("b0", "2026-03-01"), bank("b1", "2026-03-30")]
STRIPE_DAYS = [
    payment("s0", "1.00", "", source="stripe", counterparty="x", booked_on="2026-03-01"),
    payment("s1", "1.00", "", source="stripe", counterparty="x", booked_on="2026-03-30"),
]
PAYOUTS = [
    payout("po_1", "49.30", arrival_on="2026-03-11"),
    payout("po_2", "49.30", arrival_on="2026-03-18"),
    payout("po_3", "50.00", arrival_on="2026-03-20"),
]
RECORDED = [recorded("900", 10234, "50.00", transid="ch_9", recorded_on="2026-03-12")]
CHARGE = payment("txn_9", "50.00", "charge ch_9", source="stripe", booked_on="2026-03-12")


def engine_run(
    extra: list[dict[str, str]], lines: list[tuple[str, str]], evidence: list[dict[str, str]]
) -> MatchResult:
    """One run: bank and Stripe money over March, three payouts, one recorded payment."""
    base = inputs(
        [invoice(10234, "50.00")], [*BANK_DAYS, *STRIPE_DAYS, *extra], RECORDED, PAYOUTS, lines
    )
    typed = prepare_transactions(frame(evidence, TRANSACTION_COLUMNS), "evidence")
    return match(replace(base, evidence=typed), MatchConfig(invoice_number_format=FORMAT))


def first_run() -> MatchResult:
    """po_1 and po_2 never reached the bank, po_3's charge is 5.00 short of it, and WHMCS's
    payment 900 has no money behind it."""
    charge = payment("ch_a", "45.00", "charge", source="stripe", booked_on="2026-03-19")
    return engine_run([charge], [("po_3", "ch_a")], [])


def later_run() -> MatchResult:
    """po_1's credit and Stripe's charge for payment 900 are found among the evidence, po_3's
    transactions now add up; po_2 is still missing."""
    charge = payment("ch_a", "50.00", "charge", source="stripe", booked_on="2026-03-19")
    credit = payment(
        "e_po", "49.30", "STRIPE PAYOUT", counterparty="Stripe", booked_on="2026-03-12"
    )
    return engine_run([charge], [("po_3", "ch_a")], [credit, CHARGE])


def store(app: Engine, result: MatchResult, run_id: str) -> Any:
    with tenant_session(app, TENANT) as session:
        return store_exceptions(session, TENANT, run_id, result, {"b0", "b1", "s0", "s1"})


def subject_rows(owner: Engine) -> dict[tuple[str, str], tuple[Any, ...]]:
    with owner.connect() as conn:
        found = conn.execute(
            text(
                "SELECT kind, subject_ref, status, closed_reason, closed_by_run, version "
                "FROM exceptions WHERE transaction_ref IS NULL"
            )
        )
        return {(r[0], r[1]): tuple(r[2:]) for r in found}


def test_the_first_run_raises_one_exception_per_subject() -> None:
    e = first_run().exceptions
    raised = set(zip(e["kind"], e["subject"], strict=True))
    assert {
        ("payout_missing", "po_1"),
        ("payout_missing", "po_2"),
        ("payout_shortfall", "po_3"),
        ("unbacked_payment", "900"),
    } <= raised


def test_exceptions_that_stop_applying_are_closed_with_a_reason(
    books: tuple[Engine, Engine],
) -> None:
    owner, app = books
    store(app, first_run(), "run-1")
    before = subject_rows(owner)
    assert all(row[0] == "open" for row in before.values())

    changes = store(app, later_run(), "run-2")
    after = subject_rows(owner)
    assert after[("payout_missing", "po_2")] == before[("payout_missing", "po_2")]
    closed = {key: row for key, row in after.items() if row[0] == "closed"}
    assert {key: (row[1], row[2]) for key, row in closed.items()} == {
        ("payout_missing", "po_1"): (
            "the payout's bank credit is found, or it is no longer due",
            "run-2",
        ),
        ("payout_shortfall", "po_3"): ("the payout now adds up", "run-2"),
        ("unbacked_payment", "900"): ("money now confirms the WHMCS payment", "run-2"),
    }
    assert changes.closed == 3
    with tenant_session(app, TENANT) as session:
        log = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "exception.closed")
        ).all()
    assert sorted(e.details["subject_ref"] for e in log) == ["900", "po_1", "po_3"]

    store(app, later_run(), "run-3")  # the same result again changes nothing
    assert subject_rows(owner) == after


def test_a_subject_the_run_cannot_judge_stays_open(books: tuple[Engine, Engine]) -> None:
    owner, app = books
    store(app, first_run(), "run-1")
    # a run over a few days only: it has no bank money around the payouts or the payment
    short = inputs(
        [invoice(10234, "50.00")],
        [bank("b5", "2026-03-15"), bank("b6", "2026-03-16")],
        RECORDED,
        PAYOUTS,
        [],
    )
    result = match(short, MatchConfig(invoice_number_format=FORMAT))
    assert result.judged.empty
    store(app, result, "run-2")
    assert all(row[0] == "open" for row in subject_rows(owner).values())
