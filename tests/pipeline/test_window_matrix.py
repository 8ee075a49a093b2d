"""Any sequence of windows ends in the same business tables as one clean run over their union:
sub-windows of a stored month, supersets of stored parts, overlapping pairs in either order, and
a backfill by week followed by a re-run of three days. Replays call no provider."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from flows.backfill import BackfillOutcome, backfill
from flows.outcome import RunOutcome
from flows.reconcile import reconcile
from recon.settings import get_settings
from tests.pipeline.conftest import AS_OF, TENANT, Pipeline

Window = tuple[dt.date, dt.date]
START = AS_OF - dt.timedelta(days=29)
UNION: Window = (START, AS_OF)


def day(n: int) -> dt.date:
    """The n-th day of the union (0 is its first)."""
    return START + dt.timedelta(days=n)


LIVE = "reverses_id IS NULL AND id NOT IN (SELECT reverses_id FROM allocations WHERE reverses_id IS NOT NULL)"
TABLES: dict[str, str] = {
    "transactions": "SELECT source, account_ref, source_id, kind, status, booked_on, "
    "amount_minor, fee_minor, currency, counterparty, reference, payout_id FROM transactions",
    "invoices": "SELECT invoice_id, client_id, total_minor, balance_minor, currency, status "
    "FROM invoices",
    "payouts": "SELECT source, payout_id, arrival_on, amount_minor, currency, status FROM payouts",
    "allocations": "SELECT transaction_ref, invoice_id, amount_minor, currency, rule, confidence, "
    f"decision, origin FROM allocations WHERE {LIVE}",
    "exceptions": "SELECT kind, transaction_ref, invoice_id, amount_minor, currency "
    "FROM exceptions WHERE status = 'open'",
}


DATA = ("transactions", "invoices", "payouts")
DECISIONS = ("allocations", "exceptions")


def snapshot(engine: Engine) -> dict[str, list[tuple[str, ...]]]:
    """The business tables on their natural columns, sorted (ids and timestamps left out)."""
    with engine.connect() as conn:
        return {
            name: sorted(tuple(str(v) for v in row) for row in conn.execute(text(query)))
            for name, query in TABLES.items()
        }


def run(window: Window) -> RunOutcome:
    return reconcile(tenant=TENANT, date_from=window[0], date_to=window[1])


def weekly_backfill(window: Window) -> BackfillOutcome:
    return backfill(tenant=TENANT, date_from=window[0], date_to=window[1], period_days=7)


Step = tuple[Callable[[Window], object], Window]

SEQUENCES: dict[str, list[Step]] = {
    "sub-window after a month": [(run, UNION), (run, (day(6), day(8)))],
    "sub-windows at both ends": [(run, UNION), (run, (day(0), day(2))), (run, (day(27), day(29)))],
    "superset after parts": [(run, (day(0), day(14))), (run, (day(15), day(29))), (run, UNION)],
    "overlapping pair": [(run, (day(0), day(19))), (run, (day(10), day(29)))],
    "overlapping pair, later first": [(run, (day(10), day(29))), (run, (day(0), day(19)))],
    "backfill by week, then three days": [(weekly_backfill, UNION), (run, (day(12), day(14)))],
}

_clean: dict[Window, dict[str, list[tuple[str, ...]]]] = {}


def clean_union(pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The tables of one clean run over the union, in a database of its own (once per module)."""
    if UNION not in _clean:
        path = tmp_path / "union.db"
        engine = pipeline.new_database(path)
        monkeypatch.setenv("RECON_DATABASE_URL", f"sqlite:///{path}")
        get_settings.cache_clear()
        run(UNION)
        _clean[UNION] = snapshot(engine)
        engine.dispose()
        monkeypatch.setenv("RECON_DATABASE_URL", pipeline.url)
        get_settings.cache_clear()
    return _clean[UNION]


def provider_calls(pipeline: Pipeline) -> int:
    return sum(plan.count() for plan in pipeline.sandbox.faults.values())


_after: dict[str, dict[str, list[tuple[str, ...]]]] = {}


def after_sequence(name: str, pipeline: Pipeline) -> dict[str, list[tuple[str, ...]]]:
    """The tables after running a sequence in a fresh database (once per module); a window
    inside one already run must be served from the store, calling no provider."""
    if name not in _after:
        covered: list[Window] = []
        for step, window in SEQUENCES[name]:
            before = provider_calls(pipeline)
            result = step(window)
            inside = any(w[0] <= window[0] and window[1] <= w[1] for w in covered)
            if step is run and inside:
                assert all(s.replayed for s in result.sources.values()), result.sources
                assert provider_calls(pipeline) == before, f"{window} called a provider"
            covered.append(window)
        _after[name] = snapshot(pipeline.engine)
    return _after[name]


def assert_same(got: Any, expected: Any, tables: tuple[str, ...]) -> None:
    for table in tables:
        missing = sorted(set(expected[table]) - set(got[table]))[:3]
        extra = sorted(set(got[table]) - set(expected[table]))[:3]
        assert got[table] == expected[table], f"{table}: missing {missing}, extra {extra}"


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_a_sequence_of_windows_loads_what_one_clean_run_over_their_union_loads(
    name: str, pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = clean_union(pipeline, tmp_path, monkeypatch)
    assert_same(after_sequence(name, pipeline), expected, DATA)


# Payouts and WHMCS payments are judged only where money covers the days around them; a run
# counts the stored money around its window (evidence, read only), so week-long periods judge
# what one run over the month judges.
@pytest.mark.parametrize("name", list(SEQUENCES))
def test_a_sequence_of_windows_decides_what_one_clean_run_over_their_union_decides(
    name: str, pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = clean_union(pipeline, tmp_path, monkeypatch)
    assert_same(after_sequence(name, pipeline), expected, DECISIONS)


def test_a_superset_of_stored_parts_is_served_from_the_store(pipeline: Pipeline) -> None:
    run((day(0), day(14)))
    run((day(15), day(29)))
    before = provider_calls(pipeline)
    result = run(UNION)
    assert all(s.replayed for s in result.sources.values())
    assert provider_calls(pipeline) == before


def test_a_weekly_backfill_fetches_each_account_once(pipeline: Pipeline) -> None:
    bank = pipeline.sandbox.faults["gocardless"]
    before = bank.count(path="/api/v2/accounts/*/transactions/")
    result = weekly_backfill(UNION)
    assert (result.periods, result.skipped, result.ran) == (5, 0, 5)
    accounts = len(
        pipeline.sandbox.tenant_settings(pipeline.server.url)["gocardless"]["account_ids"]
    )
    assert bank.count(path="/api/v2/accounts/*/transactions/") - before == accounts
    again = backfill(
        tenant=TENANT, date_from=UNION[0], date_to=UNION[1], period_days=7, refetch=True
    )
    assert again.ran == 5
    assert bank.count(path="/api/v2/accounts/*/transactions/") - before == 2 * accounts


@pytest.mark.parametrize("window", [UNION, (day(3), day(5))], ids=["same", "sub-window"])
def test_a_replay_needs_no_provider_secret(
    window: Window, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(UNION)
    for name in ("RECON_VAULT_ADDR", "RECON_VAULT_ROLE_ID", "RECON_VAULT_SECRET_ID"):
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    before = provider_calls(pipeline)
    result = run(window)
    assert all(s.replayed for s in result.sources.values())
    assert provider_calls(pipeline) == before


def test_a_refetch_leaves_half_of_the_days_bank_calls(pipeline: Pipeline) -> None:
    run(UNION)
    bank = pipeline.sandbox.faults["gocardless"]
    calls = bank.count(path="/api/v2/accounts/*/transactions/")
    with pipeline.engine.begin() as conn:  # as if the bank allowed 4 calls and 2 were made
        used = conn.execute(
            text(
                'UPDATE provider_quotas SET calls = 2, "limit" = 4 '
                "WHERE provider = 'gocardless' AND endpoint = 'transactions'"
            )
        ).rowcount
    assert used == len(
        pipeline.sandbox.tenant_settings(pipeline.server.url)["gocardless"]["account_ids"]
    )
    result = reconcile(tenant=TENANT, date_from=UNION[0], date_to=UNION[1], refetch=True)
    bank_sources = {k: v for k, v in result.sources.items() if k.startswith("bank:")}
    assert bank_sources and all(s.replayed for s in bank_sources.values())
    assert not result.sources["whmcs:whmcs"].replayed
    assert bank.count(path="/api/v2/accounts/*/transactions/") == calls
