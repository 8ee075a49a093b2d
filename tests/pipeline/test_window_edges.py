"""A Stripe payout's bank credit booked in one window and the payout in the next, and days no
stored fetch holds (SQLite and PostgreSQL, the engine's storage running as the application role).

* A credit raised as having no payout in an earlier run is closed (reason, time, run, audit
  entry; never deleted) by the later run that links it to its payout through the evidence, so
  the two runs end with the open exceptions of one run over both windows.
* "No payout for this credit" and "payout without bank credit" wait while a stored fetch does
  not hold the days they need (a gap in what is stored), and are raised once one does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from recon.db.base import utcnow
from recon.db.models import AuditEntry, Invoice, Payout, RawFetch, Transaction
from recon.db.tenancy import admin_session, tenant_session
from recon.tenants import TenantSettings, add_tenant
from tasks.reconcile import ReconcileSummary, reconcile_window

D = dt.date
SPLIT, UNION = "acme-split", "acme"  # the same books, decided as two windows and as one
A = (D(2026, 3, 1), D(2026, 3, 10))
B = (D(2026, 3, 11), D(2026, 3, 20))
BOTH = (A[0], B[1])
CREDIT = "bank:acc:cr1"
NO_PAYOUT = "a payment provider's payout with no matching payout record"


@pytest.fixture(params=["sqlite", "postgresql"])
def engines(request: pytest.FixtureRequest) -> Iterator[tuple[Engine, Engine]]:
    """(owner, application) engines on a migrated database of each backend."""
    if request.param == "sqlite":
        engine = request.getfixturevalue("sqlite_engine")
        yield engine, engine
    else:
        yield request.getfixturevalue("pg_owner_engine"), request.getfixturevalue("pg_app_engine")


def tenant(
    owner: Engine, app: Engine, name: str, rent_days: tuple[dt.date, ...] = (*A, *B)
) -> None:
    """A tenant with one open invoice and bank money on `rent_days` (the first and last days
    of A and B)."""
    with admin_session(owner) as session:
        add_tenant(session, name, "Acme", TenantSettings(), actor="test")
    with tenant_session(app, name) as session:
        session.add(
            Invoice(
                invoice_id="5001", invoice_num="5001", client_id="7", client_name="Jane Doe",
                issued_on=D(2026, 2, 20), due_on=D(2026, 3, 4), total_minor=10000,
                balance_minor=10000, currency="EUR", status="Unpaid",
            )
        )  # fmt: skip
        for n, day in enumerate(rent_days):
            session.add(rent(f"rent{n}", day))


def rent(source_id: str, day: dt.date) -> Transaction:
    return Transaction(
        source="bank", account_ref="acc", source_id=source_id, booked_on=day,
        amount_minor=-100, currency="EUR", counterparty="Landlord", reference="rent",
    )  # fmt: skip


def add(app: Engine, name: str, *rows: Any) -> None:
    with tenant_session(app, name) as session:
        for row in rows:
            session.add(row)


def stripe_credit(day: dt.date = A[1]) -> Transaction:
    """The bank credit of payout po_1 (49.30), booked on the last day of A."""
    return Transaction(
        source="bank", account_ref="acc", source_id="cr1", booked_on=day, amount_minor=4930,
        currency="EUR", counterparty="STRIPE", reference="STRIPE PAYOUT",
    )  # fmt: skip


def payout(arrival: dt.date = B[0]) -> Payout:
    """Payout po_1, created and arriving in B (the day after its credit was booked)."""
    return Payout(
        source="stripe", payout_id="po_1", arrival_on=arrival, amount_minor=4930,
        currency="EUR", status="paid",
    )  # fmt: skip


def fetched(provider: str, dataset: str, window: tuple[dt.date, dt.date]) -> RawFetch:
    """A complete stored fetch of `window`."""
    account = "acc" if provider == "gocardless" else provider
    return RawFetch(
        provider=provider, account_ref=account, dataset=dataset, window_from=window[0],
        window_to=window[1], pages=1, completed_at=utcnow(),
    )  # fmt: skip


def bank_fetch(window: tuple[dt.date, dt.date]) -> RawFetch:
    return fetched("gocardless", "transactions", window)


def stripe_fetch(window: tuple[dt.date, dt.date]) -> RawFetch:
    return fetched("stripe", "activity", window)


def run(app: Engine, name: str, window: tuple[dt.date, dt.date], run_id: str) -> ReconcileSummary:
    return reconcile_window(app, name, window, run_id=run_id)


def open_exceptions(owner: Engine, name: str) -> list[tuple[Any, ...]]:
    with owner.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT kind, transaction_ref, invoice_id, subject_ref, amount_minor, currency "
                "FROM exceptions WHERE tenant_id = :t AND status = 'open'"
            ),
            {"t": name},
        ).all()
    return sorted(tuple(r) for r in rows)


def exception_rows(owner: Engine, name: str, ref: str) -> list[tuple[Any, ...]]:
    with owner.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT kind, status, closed_reason, closed_by_run, closed_at, run_id "
                "FROM exceptions WHERE tenant_id = :t AND transaction_ref = :r"
            ),
            {"t": name, "r": ref},
        ).all()
    return [tuple(r) for r in rows]


def live_links(owner: Engine, name: str) -> list[tuple[str, str]]:
    with owner.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT left_ref, right_ref FROM matches m WHERE m.tenant_id = :t AND "
                "m.reverses_id IS NULL AND NOT EXISTS "
                "(SELECT 1 FROM matches r WHERE r.reverses_id = m.id)"
            ),
            {"t": name},
        ).all()
    return sorted((r[0], r[1]) for r in rows)


# -- 1. a credit raised in an earlier run is closed by the run that links it --------------------


def test_a_credit_raised_earlier_is_closed_when_a_later_window_links_it(
    engines: tuple[Engine, Engine],
) -> None:
    owner, app = engines
    for name in (SPLIT, UNION):
        tenant(owner, app, name)
        add(app, name, stripe_credit())
    add(app, UNION, payout())
    run(app, UNION, BOTH, "union")
    assert live_links(owner, UNION) == [("po_1", CREDIT)]

    # A: the credit is in, its payout is not stored yet (created in B): no payout for it
    run(app, SPLIT, A, "run-a")
    assert exception_rows(owner, SPLIT, CREDIT) == [
        ("unmatched_payment", "open", None, None, None, "run-a")
    ]
    # B: the payout arrives; the credit is evidence, linked to it
    add(app, SPLIT, payout())
    summary = run(app, SPLIT, B, "run-b")
    assert live_links(owner, SPLIT) == [("po_1", CREDIT)]
    assert summary.exceptions_closed == 1

    ((kind, status, reason, by_run, closed_at, run_id),) = exception_rows(owner, SPLIT, CREDIT)
    assert (kind, status, by_run, run_id) == ("unmatched_payment", "closed", "run-b", "run-a")
    assert reason == "the credit is now linked to payout po_1"
    assert closed_at is not None
    assert open_exceptions(owner, SPLIT) == open_exceptions(owner, UNION)

    with tenant_session(app, SPLIT) as session:
        log = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "exception.closed")
        ).all()
    assert [
        (e.details["transaction_ref"], e.details["run_id"], e.details["reason"]) for e in log
    ] == [(CREDIT, "run-b", "the credit is now linked to payout po_1")]

    # the same window again changes nothing
    before = exception_rows(owner, SPLIT, CREDIT)
    assert run(app, SPLIT, B, "run-b2").exceptions_closed == 0
    assert exception_rows(owner, SPLIT, CREDIT) == before


# -- 2. judgements wait for stored fetches to hold the days they need --------------------------


def test_no_payout_for_a_credit_waits_for_the_payout_days_to_be_fetched(
    engines: tuple[Engine, Engine],
) -> None:
    owner, app = engines
    for name in (SPLIT, UNION):
        tenant(owner, app, name)
        add(app, name, stripe_credit())
    # one run over both windows, fetched at once: no payout anywhere, the credit is raised
    add(app, UNION, bank_fetch(BOTH), stripe_fetch(BOTH))
    run(app, UNION, BOTH, "union")
    assert ("unmatched_payment", CREDIT) in {(r[0], r[1]) for r in open_exceptions(owner, UNION)}

    # A alone: Stripe's fetch ends the day of the credit, a payout of the next day is unknown
    add(app, SPLIT, bank_fetch(A), stripe_fetch(A))
    summary = run(app, SPLIT, A, "run-a")
    assert exception_rows(owner, SPLIT, CREDIT) == []
    assert summary.stats["credits_waiting_for_cover"] == 1

    # B is fetched (still no payout): the credit, now evidence, is raised by B
    add(app, SPLIT, bank_fetch(B), stripe_fetch(B))
    summary = run(app, SPLIT, B, "run-b")
    assert [r[:2] for r in exception_rows(owner, SPLIT, CREDIT)] == [("unmatched_payment", "open")]
    assert summary.stats["credits_waiting_for_cover"] == 0
    assert open_exceptions(owner, SPLIT) == open_exceptions(owner, UNION)

    # re-running either window changes nothing
    before = exception_rows(owner, SPLIT, CREDIT)
    run(app, SPLIT, A, "run-a2")
    run(app, SPLIT, B, "run-b2")
    assert exception_rows(owner, SPLIT, CREDIT) == before


def test_a_waiting_credit_whose_payout_comes_later_is_never_raised(
    engines: tuple[Engine, Engine],
) -> None:
    owner, app = engines
    tenant(owner, app, SPLIT)
    add(app, SPLIT, stripe_credit(), bank_fetch(A), stripe_fetch(A))
    run(app, SPLIT, A, "run-a")
    add(app, SPLIT, payout(), bank_fetch(B), stripe_fetch(B))
    run(app, SPLIT, B, "run-b")
    assert exception_rows(owner, SPLIT, CREDIT) == []
    assert live_links(owner, SPLIT) == [("po_1", CREDIT)]


def test_payout_without_bank_credit_waits_for_the_bank_days_to_be_fetched(
    engines: tuple[Engine, Engine],
) -> None:
    owner, app = engines
    # the bank is stored for A and for C, not for B (a gap); po_1 arrives in B
    C = (D(2026, 3, 21), D(2026, 3, 31))
    tenant(owner, app, SPLIT, (*A, *C))
    # a Stripe charge in B (the engine cannot yet store a payout exception of a run with no
    # transactions at all: its ledger looks up payment 0)
    charge = Transaction(
        source="stripe", account_ref="stripe", source_id="ch_b", booked_on=D(2026, 3, 15),
        amount_minor=10000, currency="EUR", counterparty="Jane Doe", reference="Invoice 5001",
    )  # fmt: skip
    add(app, SPLIT, payout(D(2026, 3, 18)), charge)
    add(app, SPLIT, bank_fetch(A), bank_fetch(C), stripe_fetch(A), stripe_fetch(B), stripe_fetch(C))
    run(app, SPLIT, A, "run-a")
    summary = run(app, SPLIT, C, "run-c")
    assert ("payout_missing", "po_1") not in {(r[0], r[3]) for r in open_exceptions(owner, SPLIT)}
    assert summary.stats["payouts_waiting_for_cover"] == 1

    # B's bank days are fetched and hold no credit for it: now it is missing
    add(app, SPLIT, bank_fetch(B))
    summary = run(app, SPLIT, B, "run-b")
    assert ("payout_missing", "po_1") in {(r[0], r[3]) for r in open_exceptions(owner, SPLIT)}
    assert summary.stats["payouts_waiting_for_cover"] == 0
    # and a later run over C, with the bank now stored around it, agrees
    run(app, SPLIT, C, "run-c2")
    assert ("payout_missing", "po_1") in {(r[0], r[3]) for r in open_exceptions(owner, SPLIT)}


def test_without_stored_fetches_the_engine_judges_as_before(
    engines: tuple[Engine, Engine],
) -> None:
    owner, app = engines
    tenant(owner, app, SPLIT)
    add(app, SPLIT, stripe_credit())
    summary = run(app, SPLIT, A, "run-a")
    assert [r[:2] for r in exception_rows(owner, SPLIT, CREDIT)] == [("unmatched_payment", "open")]
    assert summary.stats["credits_waiting_for_cover"] == 0


def test_a_short_credit_stays_raised_when_an_earlier_window_links_it_again(
    engines: tuple[Engine, Engine],
) -> None:
    owner, app = engines
    for name in (SPLIT, UNION):
        tenant(owner, app, name)
        short = stripe_credit(B[0])
        short.amount_minor = 4900  # 0.30 short of the payout
        add(app, name, short, payout(B[0]))
    run(app, UNION, BOTH, "union")
    run(app, SPLIT, B, "run-b")  # decides the credit: linked, 0.30 short
    run(app, SPLIT, A, "run-a")  # sees it as evidence and links it again
    assert [r[:2] for r in exception_rows(owner, SPLIT, CREDIT)] == [("payout_shortfall", "open")]
    assert open_exceptions(owner, SPLIT) == open_exceptions(owner, UNION)


def test_a_short_credit_decided_before_its_payout_is_raised_when_a_later_window_links_it(
    engines: tuple[Engine, Engine],
) -> None:
    owner, app = engines
    for name in (SPLIT, UNION):
        tenant(owner, app, name)
        short = stripe_credit()
        short.amount_minor = 4900  # 0.30 short of the payout
        add(app, name, short)
    add(app, UNION, payout())
    run(app, UNION, BOTH, "union")
    run(app, SPLIT, A, "run-a")  # the credit is in, its payout not stored yet: no payout for it
    add(app, SPLIT, payout())
    run(app, SPLIT, B, "run-b")  # the credit is evidence, linked to the payout: 0.30 short
    assert open_exceptions(owner, SPLIT) == open_exceptions(owner, UNION)
    assert ("payout_shortfall", "open") in [r[:2] for r in exception_rows(owner, SPLIT, CREDIT)]

    def details(name: str) -> list[str]:
        with owner.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT detail FROM exceptions WHERE tenant_id = :t "
                        "AND kind = 'payout_shortfall' AND status = 'open'"
                    ),
                    {"t": name},
                ).scalars()
            )

    assert details(SPLIT) == details(UNION) and len(details(UNION)) == 1
    before = exception_rows(owner, SPLIT, CREDIT)
    run(app, SPLIT, B, "run-b2")  # the same window again changes nothing
    assert exception_rows(owner, SPLIT, CREDIT) == before
