"""Great Expectations gates every batch: bad rows to quarantine with reasons, bad batches held."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, select

from expectations.export import JSON_DIR, rendered
from expectations.suites import SUITES
from recon.canonical import INVOICES, TRANSACTIONS
from recon.db.models import QuarantinedRow, Run, Transaction, ValidationResult
from recon.db.tenancy import admin_session, tenant_session
from recon.tenants import TenantSettings, add_tenant
from tasks.load import Batch, Reject, load_batch
from tasks.validate import (
    BatchHeldError,
    ValidationPolicy,
    raise_if_held,
    store_outcome,
    validate_batch,
)

WINDOW = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))


@pytest.mark.parametrize("name", sorted(SUITES))
def test_committed_json_matches_the_suites_in_code(name: str) -> None:
    committed = (JSON_DIR / f"{name}.json").read_text(encoding="utf-8")
    assert committed == rendered(name), f"run `python -m expectations.export` after changing {name}"


def test_every_committed_file_has_a_suite() -> None:
    assert {p.stem for p in Path(JSON_DIR).glob("*.json")} == set(SUITES)


def test_a_changed_suite_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    import expectations.suites as suites

    original = suites.SUITES["bank_transactions"]
    monkeypatch.setitem(suites.SUITES, "bank_transactions", lambda: original()[:-1])
    committed = (JSON_DIR / "bank_transactions.json").read_text(encoding="utf-8")
    assert committed != rendered("bank_transactions")


def bank_row(source_id: str, **overrides: Any) -> dict[str, Any]:
    row = {
        "source": "bank", "account_ref": "acc-1", "source_id": source_id, "kind": "payment",
        "status": "booked", "booked_on": dt.date(2026, 10, 10), "value_on": None,
        "amount_minor": 1000, "fee_minor": 0, "currency": "EUR", "counterparty": "Jane",
        "reference": "INV-1", "payout_id": None,
    }  # fmt: skip
    return {**row, **overrides}


def defect_batch() -> Batch:
    rows = [bank_row(f"ok-{n}") for n in range(30)] + [
        bank_row("null-amount", amount_minor=None),
        bank_row("bad-currency", currency="EURO"),
        bank_row("late", booked_on=dt.date(2026, 12, 24)),
        bank_row("dup"),
        bank_row("dup", amount_minor=2000),
        bank_row("huge", amount_minor=10**12),
    ]
    return Batch("gocardless", TRANSACTIONS, pd.DataFrame(rows))


def test_defective_rows_are_quarantined_with_the_right_reasons() -> None:
    outcome = validate_batch(defect_batch(), window_from=WINDOW[0], window_to=WINDOW[1],
                             policy=ValidationPolicy(hold_threshold=0.5))  # fmt: skip
    reasons = {r.row_key: set(r.reasons) for r in outcome.batch.rejects}
    assert reasons == {
        "bank|acc-1|null-amount": {"amount_present"},
        "bank|acc-1|bad-currency": {"currency_iso4217"},
        "bank|acc-1|late": {"booked_in_window"},
        "bank|acc-1|dup": {"id_unique"},
        "bank|acc-1|dup#2": {"id_unique"},
        "bank|acc-1|huge": {"amount_sane"},
    }
    assert sorted(outcome.batch.rows["source_id"]) == sorted(f"ok-{n}" for n in range(30))
    assert outcome.rows_failed == 6 and not outcome.held


def test_within_the_grace_days_is_in_window() -> None:
    rows = pd.DataFrame([bank_row("edge", booked_on=dt.date(2026, 11, 3))])
    outcome = validate_batch(
        Batch("gocardless", TRANSACTIONS, rows), window_from=WINDOW[0], window_to=WINDOW[1]
    )
    assert outcome.success


def test_stripe_net_must_be_amount_minus_fee() -> None:
    rows = pd.DataFrame(
        [
            {
                **bank_row("ch_1", kind="charge"),
                "source": "stripe",
                "fee_minor": 59,
                "net_minor": 941,
            },
            {
                **bank_row("ch_2", kind="charge"),
                "source": "stripe",
                "fee_minor": 59,
                "net_minor": 1000,
            },
        ]
    )
    outcome = validate_batch(Batch("stripe", TRANSACTIONS, rows), window_from=WINDOW[0], window_to=WINDOW[1],
                             policy=ValidationPolicy(hold_threshold=1.0))  # fmt: skip
    assert [(r.row_key, r.reasons) for r in outcome.batch.rejects] == [
        ("stripe|acc-1|ch_2", ("net_is_amount_minus_fee",))
    ]


def test_invoice_rules() -> None:
    base = {
        "invoice_num": None, "client_id": "7", "client_name": "Jane", "company_name": None,
        "issued_on": dt.date(2026, 9, 1), "due_on": None, "currency": "EUR",
    }  # fmt: skip
    rows = pd.DataFrame(
        [
            {
                **base,
                "invoice_id": "1",
                "total_minor": 1000,
                "balance_minor": 1000,
                "status": "Unpaid",
            },
            {
                **base,
                "invoice_id": "2",
                "total_minor": 1000,
                "balance_minor": 1500,
                "status": "Unpaid",
            },
            {
                **base,
                "invoice_id": "3",
                "total_minor": 1000,
                "balance_minor": 0,
                "status": "Settled",
            },
        ]
    )
    outcome = validate_batch(Batch("whmcs", INVOICES, rows), window_from=WINDOW[0], window_to=WINDOW[1],
                             policy=ValidationPolicy(hold_threshold=1.0))  # fmt: skip
    assert {r.row_key: r.reasons for r in outcome.batch.rejects} == {
        "2": ("balance_within_total",),
        "3": ("status_known",),
    }


def test_a_batch_over_the_threshold_is_held() -> None:
    outcome = validate_batch(defect_batch(), window_from=WINDOW[0], window_to=WINDOW[1])
    assert outcome.held  # 6 of 36 > 5 %
    with pytest.raises(BatchHeldError, match="6 of 36 records"):
        raise_if_held(outcome)


def test_parse_rejects_count_towards_the_threshold() -> None:
    rows = pd.DataFrame([bank_row(f"ok-{n}") for n in range(10)])
    unreadable = [Reject(f"sha256:{n}", ("amount is missing",), {}) for n in range(2)]
    outcome = validate_batch(Batch("gocardless", TRANSACTIONS, rows, unreadable),
                             window_from=WINDOW[0], window_to=WINDOW[1])  # fmt: skip
    assert outcome.success and outcome.held


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    with admin_session(sqlite_engine) as session:
        add_tenant(session, "acme", "Acme", TenantSettings(), actor="test")
    return sqlite_engine


def test_validated_batch_loads_its_good_rows_and_keeps_its_verdict(engine: Engine) -> None:
    outcome = validate_batch(defect_batch(), window_from=WINDOW[0], window_to=WINDOW[1],
                             policy=ValidationPolicy(hold_threshold=0.5))  # fmt: skip
    with tenant_session(engine, "acme") as session:
        session.add(Run(id="run-1", window_from=WINDOW[0], window_to=WINDOW[1]))
        session.flush()
        store_outcome(session, "run-1", outcome)
    result = load_batch(engine, "acme", outcome.batch, run_id="run-1")
    assert (result.inserted, result.quarantined) == (30, 6)
    with tenant_session(engine, "acme") as session:
        assert len(session.scalars(select(Transaction)).all()) == 30
        stored = {q.row_key: q.reasons for q in session.scalars(select(QuarantinedRow))}
        assert stored["bank|acc-1|late"] == ["booked_in_window"]
        huge = session.scalars(
            select(QuarantinedRow).where(QuarantinedRow.row_key == "bank|acc-1|huge")
        ).one()
        assert (huge.amount_minor, huge.currency, huge.booked_on) == (
            10**12,
            "EUR",
            dt.date(2026, 10, 10),
        )
        verdict = session.scalars(select(ValidationResult)).one()
        assert (verdict.suite, verdict.rows_failed, verdict.success) == (
            "bank_transactions",
            6,
            False,
        )
        assert json.loads(json.dumps(verdict.result))["expectations"]
