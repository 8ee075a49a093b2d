"""The reconcile flow end to end against the sandbox: results in the tables, re-runs that
change nothing, faults that recover or fail cleanly, and windows that compose."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from connectors.http import ProviderUnavailableError
from flows.outcome import RunOutcome
from flows.reconcile import reconcile
from tests.pipeline.conftest import AS_OF, TENANT, Pipeline

WINDOW = (AS_OF - dt.timedelta(days=59), AS_OF)

BUSINESS_TABLES: dict[str, str] = {
    "transactions": "source, account_ref, source_id, kind, status, booked_on, amount_minor, "
    "fee_minor, currency, counterparty, reference, payout_id",
    "invoices": "invoice_id, client_id, total_minor, balance_minor, currency, status",
    "recorded_payments": "whmcs_txn_id, invoice_id, amount_minor, fees_minor, currency, transid",
    "payouts": "source, payout_id, arrival_on, amount_minor, currency, status",
    "payout_lines": "source, payout_id, transaction_id",
    "allocations": "transaction_ref, invoice_id, amount_minor, currency, rule, confidence, "
    "decision, origin",
    "exceptions": "kind, transaction_ref, invoice_id, amount_minor, currency, status",
    "quarantined_rows": "provider, dataset, row_key, reasons",
}


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every business table on its natural columns, sorted (ids and timestamps left out)."""
    with engine.connect() as conn:
        return {
            table: sorted(
                tuple(str(v) for v in row)
                for row in conn.execute(text(f"SELECT {columns} FROM {table}"))
            )
            for table, columns in BUSINESS_TABLES.items()
        }


def run(window: tuple[dt.date, dt.date] = WINDOW, **kwargs: Any) -> RunOutcome:
    return reconcile(tenant=TENANT, date_from=window[0], date_to=window[1], **kwargs)


def test_a_run_stores_the_engines_results_and_a_second_run_changes_nothing(
    pipeline: Pipeline,
) -> None:
    first = run()
    assert first.allocations_auto > 100 and first.transactions > 300
    tables = snapshot(pipeline.engine)
    assert len(tables["allocations"]) == first.allocations_auto + first.allocations_review
    assert len(tables["exceptions"]) == first.exceptions
    sent = {name: plan.count() for name, plan in pipeline.sandbox.faults.items()}
    second = run()
    assert all(figures.replayed for figures in second.sources.values())
    assert {name: plan.count() for name, plan in pipeline.sandbox.faults.items()} == sent
    assert snapshot(pipeline.engine) == tables
    with pipeline.engine.connect() as conn:
        statuses = conn.execute(text("SELECT status FROM runs ORDER BY started_at")).scalars()
        assert list(statuses) == ["completed", "completed"]


def test_automatic_allocations_agree_with_the_ground_truth(pipeline: Pipeline) -> None:
    """Where the world's ids survive the providers (Stripe charges, GoCardless payments),
    every automatic allocation is one the world says is right."""
    run()
    truth = pipeline.sandbox.world.truth
    expected = {
        (str(t), str(i)) for t, i in zip(truth["transaction_id"], truth["invoice_id"], strict=True)
    }
    with pipeline.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT transaction_ref, invoice_id FROM allocations WHERE decision = 'auto'")
        ).all()
        # a Stripe row is a balance transaction (txn_...); the world knows its charge
        charge_of = dict(
            conn.execute(
                text("SELECT source_id, charge_id FROM transactions WHERE charge_id IS NOT NULL")
            ).all()
        )
    checked = [
        (charge_of.get(ref.split(":", 2)[2], ref.split(":", 2)[2]), invoice)
        for ref, invoice in rows
        if ref.startswith(("stripe:", "gocardless:"))
    ]
    assert len(checked) > 50
    wrong = [pair for pair in checked if pair not in expected]
    assert len(wrong) <= len(checked) // 100, wrong[:5]


def test_transient_faults_recover_within_the_run(pipeline: Pipeline) -> None:
    pipeline.sandbox.faults["stripe"].status(503, count=2)
    pipeline.sandbox.faults["whmcs"].rate_limit(1, count=1)
    result = run()
    assert result.allocations_auto > 0
    assert pipeline.sandbox.faults["stripe"].count(status=503) == 2


def test_a_provider_that_stays_down_fails_the_run_cleanly(pipeline: Pipeline) -> None:
    pipeline.sandbox.faults["whmcs"].status(500)
    with pytest.raises(ProviderUnavailableError):
        run(sources=["whmcs", "stripe"])
    with pipeline.engine.connect() as conn:
        run_row = conn.execute(text("SELECT status, error FROM runs")).one()
        assert run_row.status == "failed" and "whmcs" in run_row.error.lower()
        assert conn.execute(text("SELECT count(*) FROM invoices")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM allocations")).scalar() == 0
    pipeline.sandbox.faults["whmcs"].clear()
    assert run(sources=["whmcs", "stripe"]).allocations_auto > 0


def test_overlapping_windows_end_where_one_run_over_their_union_ends(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    middle = WINDOW[0] + dt.timedelta(days=30)
    run((WINDOW[0], middle + dt.timedelta(days=10)))
    run((middle, WINDOW[1]))
    pieces = snapshot(pipeline.engine)
    union_engine = pipeline.new_database(tmp_path / "union.db")
    monkeypatch.setenv("RECON_DATABASE_URL", f"sqlite:///{tmp_path / 'union.db'}")
    from recon.settings import get_settings

    get_settings.cache_clear()
    run(WINDOW)
    union = snapshot(union_engine)
    for table in ("transactions", "invoices", "payouts", "payout_lines"):
        assert pieces[table] == union[table], table
    assert pieces["allocations"] == union["allocations"]


def test_backfill_runs_period_by_period_and_resumes_where_it_stopped(pipeline: Pipeline) -> None:
    from flows.backfill import backfill, periods

    window = (WINDOW[1] - dt.timedelta(days=20), WINDOW[1])
    cuts = periods(*window, 7)
    assert cuts[0] == (window[0], window[0] + dt.timedelta(days=6)) and cuts[-1][1] == window[1]
    run(cuts[0])  # as if a first backfill got this far and then failed
    pipeline.sandbox.faults["whmcs"].status(500)
    with pytest.raises(ProviderUnavailableError):
        backfill(tenant=TENANT, date_from=window[0], date_to=window[1])
    pipeline.sandbox.faults["whmcs"].clear()
    resumed = backfill(tenant=TENANT, date_from=window[0], date_to=window[1])
    assert (resumed.periods, resumed.skipped, resumed.ran) == (3, 1, 2)
    assert resumed.windows_run == tuple(cuts[1:])
    again = backfill(tenant=TENANT, date_from=window[0], date_to=window[1])
    assert (again.periods, again.skipped, again.ran) == (3, 3, 0)
    assert again.windows_run == () and again.fetched == ()
