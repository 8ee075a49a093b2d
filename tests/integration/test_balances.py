"""Bank balances captured per run and the report's balance tie-out, against the GoCardless sandbox
on SQLite and PostgreSQL: a run lands the bank's balances answer and keeps its snapshots, a replay
writes nothing new, two runs on different days tie out (opening + movements = closing), and an
exhausted balances quota leaves the run green and the report honest."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from connectors.quota import QuotaGuard
from connectors.runtime import Runtime
from connectors.sandbox.gocardless import GoCardlessState
from connectors.sandbox.serve import RunningServer
from recon.db.models import BalanceSnapshot, ProviderQuota, RawFetch
from recon.db.tenancy import tenant_session
from recon.money import to_minor
from recon.reports import build_report
from recon.reports.model import NO_BALANCE, ONE_BALANCE, BalanceTieOut
from recon.reports.sections import sections
from recon.review.access import Role
from recon.settings import get_settings
from recon.tenants import GoCardlessSettings, TenantSettings
from tasks.balances import parse_balances
from tasks.extract import Source, SourceContext, SourceResult, extract_source
from tasks.runs import finish_run, start_run
from tests.integration.gocardless_fixtures import (
    SECRET_ID,
    SECRET_KEY,
    TENANT,
    WINDOW,
    FakeClock,
    RecordingSleep,
    account_id,
    bad_state,
    bank_seed,
    clock,
    db,
    fast_policy,
    gc_server,
    payments_state,
    sleep,
)
from tests.people import make_user

__all__ = ["bad_state", "bank_seed", "clock", "db", "gc_server", "payments_state", "sleep"]

ACCOUNT = account_id(0)  # a GBP account of the seed
AUDITOR = "aud@acme.test"
NOV = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))


@pytest.fixture
def ctx(
    db: Engine, gc_server: RunningServer, sleep: RecordingSleep, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SourceContext]:
    """What extraction needs to read ACCOUNT from the sandbox, and an auditor to export."""
    monkeypatch.setenv("RECON_SECRET_ACME__GOCARDLESS_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("RECON_SECRET_ACME__GOCARDLESS_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("RECON_SECRET_AUDIT_EXPORT_SIGNING_KEY", secrets.token_hex(32))
    get_settings.cache_clear()
    settings = TenantSettings(
        gocardless=GoCardlessSettings(enabled=True, base_url=gc_server.url, account_ids=[ACCOUNT])
    )
    make_user(db, AUDITOR, Role.AUDITOR, (TENANT,))
    yield SourceContext(db, TENANT, settings, Runtime().secrets, policy=fast_policy(sleep))
    get_settings.cache_clear()


def _run(ctx: SourceContext, window: tuple[dt.date, dt.date]) -> SourceResult:
    source = Source("bank", "gocardless", ACCOUNT, "transactions")
    run_id = start_run(ctx.engine, TENANT, window, ["bank"])
    result = extract_source(ctx, source, window, run_id=run_id)
    finish_run(ctx.engine, TENANT, run_id, status="completed")
    return result


def _snapshots(engine: Engine) -> list[tuple[str, dt.date, int, str]]:
    with tenant_session(engine, TENANT) as session:
        return [
            (s.balance_type, s.reference_date, s.amount_minor, s.currency)
            for s in session.scalars(
                select(BalanceSnapshot).order_by(
                    BalanceSnapshot.reference_date, BalanceSnapshot.balance_type
                )
            )
        ]


def _balance_fetches(engine: Engine) -> int:
    with tenant_session(engine, TENANT) as session:
        return int(
            session.scalar(
                select(func.count()).select_from(RawFetch).where(RawFetch.dataset == "balances")
            )
            or 0
        )


def _booked_minor(state: GoCardlessState, status: str = "booked") -> int:
    return sum(
        to_minor(str(x["amount"]), "GBP")
        for x in state.lines()
        if x["account_id"] == ACCOUNT and x["status"] == status
    )


def _tie(engine: Engine, period: tuple[dt.date, dt.date]) -> BalanceTieOut:
    report = build_report(engine, AUDITOR, TENANT, *period)
    (row,) = [b for b in report.balances if b.account_ref == ACCOUNT]
    return row


def _status(engine: Engine, period: tuple[dt.date, dt.date]) -> str:
    report = build_report(engine, AUDITOR, TENANT, *period)
    section = next(s for s in sections(report) if s.name == "tieout_balances")
    (row,) = [r for r in section.rows() if r[0] == ACCOUNT]
    return str(row[-1])


def test_a_run_stores_the_banks_balances_from_their_own_quota(
    ctx: SourceContext, bad_state: GoCardlessState
) -> None:
    result = _run(ctx, WINDOW)
    assert not result.replayed and result.loaded > 0
    booked = _booked_minor(bad_state)
    pending = _booked_minor(bad_state, "pending")
    day = dt.date(2026, 11, 5)  # the sandbox's clock
    assert _snapshots(ctx.engine) == [
        ("closingBooked", day, booked, "GBP"),
        ("interimAvailable", day, booked + pending, "GBP"),
    ]
    assert _balance_fetches(ctx.engine) == 1
    guard = QuotaGuard(ctx.engine, TENANT)
    assert guard.usage(ACCOUNT, "transactions").calls == 1
    assert guard.usage(ACCOUNT, "balances").calls == 1
    assert bad_state.quota_used(ACCOUNT, "balances") == 1


def test_a_replay_reads_the_landed_answer_and_writes_nothing_new(
    ctx: SourceContext, bad_state: GoCardlessState
) -> None:
    _run(ctx, WINDOW)
    before = _snapshots(ctx.engine)
    with tenant_session(ctx.engine, TENANT) as session:
        ids = sorted(session.scalars(select(BalanceSnapshot.id)))
    again = _run(ctx, WINDOW)
    assert again.replayed
    assert _snapshots(ctx.engine) == before and _balance_fetches(ctx.engine) == 1
    with tenant_session(ctx.engine, TENANT) as session:
        assert sorted(session.scalars(select(BalanceSnapshot.id))) == ids
    assert bad_state.quota_used(ACCOUNT, "balances") == 1


def test_two_runs_on_different_days_tie_out_in_the_report(
    ctx: SourceContext, bad_state: GoCardlessState, clock: FakeClock
) -> None:
    _run(ctx, WINDOW)
    # one snapshot: said so, and no difference is made up
    first = _tie(ctx.engine, NOV)
    assert first.opening is None and first.closing is not None and first.difference is None
    assert _status(ctx.engine, NOV) == ONE_BALANCE
    clock.advance(days=1)
    credit, debit = 12540, -3099
    bad_state.add_transactions(
        pd.DataFrame(
            [
                _line("NOV6-IN", "125.40", "Ada Lovelace", "INV-2026-0007"),
                _line("NOV6-OUT", "-30.99", "OVH SAS", "server rent"),
            ]
        )
    )
    _run(ctx, (dt.date(2026, 11, 1), dt.date(2026, 11, 6)))
    tie = _tie(ctx.engine, NOV)
    assert (tie.opening_on, tie.closing_on) == (dt.date(2026, 11, 5), dt.date(2026, 11, 6))
    assert tie.movements == credit + debit
    assert tie.closing == tie.opening + credit + debit  # type: ignore[operator]
    assert tie.difference == 0
    assert _status(ctx.engine, NOV) == "balanced"
    # a period starting on the second day takes the first day's balance as its opening
    late = _tie(ctx.engine, (dt.date(2026, 11, 6), dt.date(2026, 11, 30)))
    assert late.opening_on == dt.date(2026, 11, 5) and late.difference == 0
    report = build_report(ctx.engine, AUDITOR, TENANT, *NOV)
    assert report.differences()["balances"] == 0


def test_a_difference_between_balances_and_movements_is_shown(
    ctx: SourceContext, bad_state: GoCardlessState, clock: FakeClock
) -> None:
    _run(ctx, WINDOW)
    clock.advance(days=1)
    # booked on the 6th but the run reads only up to the 5th: the movement is missing
    bad_state.add_transactions(pd.DataFrame([_line("NOV6-IN", "125.40", "Ada", "INV-1")]))
    _run(ctx, (dt.date(2026, 11, 1), dt.date(2026, 11, 5)))
    tie = _tie(ctx.engine, NOV)
    assert tie.difference == 12540
    assert _status(ctx.engine, NOV) == "DIFFERENCE"
    assert build_report(ctx.engine, AUDITOR, TENANT, *NOV).differences()["balances"] == 1


def test_an_exhausted_balances_quota_leaves_the_run_green_and_the_report_honest(
    ctx: SourceContext, bad_state: GoCardlessState
) -> None:
    today = dt.datetime.now(dt.UTC).date()  # the guard's own clock
    with tenant_session(ctx.engine, TENANT) as session:
        session.add(
            ProviderQuota(
                tenant_id=TENANT,
                provider="gocardless",
                account_ref=ACCOUNT,
                endpoint="balances",
                day=today,
                calls=4,
                limit=4,
            )
        )
    result = _run(ctx, WINDOW)
    assert not result.replayed and result.loaded > 0  # the run's lines are read all the same
    assert _snapshots(ctx.engine) == [] and _balance_fetches(ctx.engine) == 0
    assert bad_state.quota_used(ACCOUNT, "balances") == 0
    guard = QuotaGuard(ctx.engine, TENANT)
    assert guard.usage(ACCOUNT, "transactions").calls == 1
    oct_ = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    tie = _tie(ctx.engine, oct_)
    assert tie.opening is None and tie.closing is None and tie.difference is None
    assert _status(ctx.engine, oct_) == NO_BALANCE
    assert build_report(ctx.engine, AUDITOR, TENANT, *oct_).differences()["balances"] == 0


def test_a_balance_without_reference_date_is_dated_by_its_fetch_and_bad_entries_are_named() -> None:
    body = (
        b'{"balances": ['
        b'{"balanceAmount": {"amount": "-12.50", "currency": "EUR"}, "balanceType": "expected"},'
        b'{"balanceAmount": {"amount": "1.005", "currency": "EUR"}, "balanceType": "x"},'
        b'{"balanceAmount": {"amount": "7", "currency": "JPY"}, "balanceType": "closingBooked",'
        b' "lastChangeDateTime": "2026-11-04T10:00:00Z"}]}'
    )
    found, problems = parse_balances(body, dt.date(2026, 11, 5))
    assert [(b.balance_type, b.reference_date, b.amount_minor, b.currency) for b in found] == [
        ("expected", dt.date(2026, 11, 5), -1250, "EUR"),
        ("closingBooked", dt.date(2026, 11, 4), 7, "JPY"),
    ]
    assert len(problems) == 1 and problems[0].startswith("balance 1 is unreadable")
    assert parse_balances(b"[1]", dt.date(2026, 11, 5))[1]


def _line(tid: str, amount: str, who: str, reference: str) -> dict[str, object]:
    return {
        "transaction_id": tid,
        "account_id": ACCOUNT,
        "booked_on": dt.date(2026, 11, 6),
        "amount": amount,
        "currency": "GBP",
        "counterparty": who,
        "reference": reference,
        "status": "booked",
        "pending_id": None,
    }
