"""The auditor's report built from known books on SQLite and PostgreSQL: every figure and
tie-out, who may export, and the three formats carrying the same content."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine

from recon.db import migrate
from recon.errors import PermissionDeniedError
from recon.reports import build_report, verify_report, write_report
from recon.reports.model import NO_BALANCE, Report
from recon.review.access import Role
from tests.integration.test_export_books import FORMULA, FROM, OTHER, TENANT, TO, bank_ref, books
from tests.people import make_user

__all__ = ["books"]


def _report(engine: Engine, email: str = "aud@acme.test") -> Report:
    return build_report(engine, email, TENANT, FROM, TO)


def test_the_figures_and_tie_outs_of_known_books(books: Engine) -> None:
    make_user(books, "aud@acme.test", Role.AUDITOR, (TENANT,))
    report = _report(books)
    assert report.header.generated_by == "aud@acme.test"
    assert report.header.schema_revision == migrate.head_revision()
    summary = {(s.source, s.currency): s for s in report.summary}
    bank = summary[("bank", "EUR")]
    assert (bank.received, bank.allocated_auto, bank.allocated_people, bank.unallocated) == (
        10000 + 5000 + 4000, 10000, 3000, 6000,
    )  # fmt: skip
    stripe = summary[("stripe", "EUR")]
    assert (stripe.received, stripe.allocated_auto, stripe.suggested) == (20300, 12000, 8300)
    assert (stripe.refunded, stripe.fees) == (2000, 300)
    (tie,) = report.bank
    assert (tie.credits, tie.allocated, tie.payouts, tie.unallocated, tie.non_customer) == (
        40000, 13000, 20000, 6000, 1000,
    )  # fmt: skip
    assert tie.difference == 0
    (payout,) = report.payouts
    assert (payout.amount, payout.lines, payout.lines_total, payout.bank_credit) == (
        20000, 2, 20000, 20000,
    )  # fmt: skip
    (recorded,) = report.recorded
    assert (recorded.backed_count, recorded.unbacked_count, recorded.unchecked_count) == (1, 1, 0)
    assert recorded.difference == 0
    # the unbacked WHMCS payment is the one row that does not tie out
    assert report.differences() == {"bank": 0, "payouts": 0, "recorded": 1, "balances": 0}
    (balance,) = report.balances
    assert balance.opening is None and balance.movements == 10000 + 5000 + 20000 + 1000 - 500 + 4000
    assert report.audit.ok and report.audit.entries >= 1
    lines = list(report.allocations())
    assert report.allocation_count == len(lines) == 6
    states = {(line.invoice_id, line.amount): line.state for line in lines}
    assert states[("3", 4000)] == "reversed" and states[("3", -4000)] == "reversal"
    assert [e.kind for e in report.open_exceptions] == ["overpayment", "unbacked_payment"]
    assert {d.who for d in report.decisions} == {"fin@acme.test", "engine"}
    assert len(report.quarantined) == 1 and len(report.failed_validations) == 1


def test_the_balance_tie_out_says_when_the_bank_gave_no_balance(
    books: Engine, tmp_path: Path
) -> None:
    make_user(books, "aud@acme.test", Role.AUDITOR, (TENANT,))
    written = write_report(_report(books), "csv", tmp_path / "r.zip")
    with zipfile.ZipFile(written.path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("tieout_balances.csv"))
        rows = list(csv.DictReader(io.TextIOWrapper(archive.open(name), encoding="utf-8")))
    assert rows == [
        {"account_ref": "bank-1", "currency": "EUR", "opening_on": "", "opening": "",
         "movements": "395.00", "closing_on": "", "closing": "", "difference": "",
         "status": NO_BALANCE}
    ]  # fmt: skip


def test_an_auditor_and_finance_may_export_a_user_without_a_grant_may_not(books: Engine) -> None:
    make_user(books, "aud@acme.test", Role.AUDITOR, (TENANT,))
    make_user(books, "fin@acme.test", Role.FINANCE, (TENANT,))
    make_user(books, "other@globex.test", Role.AUDITOR, (OTHER,))
    assert _report(books, "fin@acme.test").header.generated_by == "fin@acme.test"
    with pytest.raises(PermissionDeniedError, match="no access to tenant 'acme'"):
        _report(books, "other@globex.test")


def test_a_formula_payer_comes_out_inert_in_the_csv(books: Engine, tmp_path: Path) -> None:
    make_user(books, "aud@acme.test", Role.AUDITOR, (TENANT,))
    written = write_report(_report(books), "csv", tmp_path / "r.zip")
    with zipfile.ZipFile(written.path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("allocations.csv"))
        rows = list(csv.DictReader(io.TextIOWrapper(archive.open(name), encoding="utf-8")))
    row = next(r for r in rows if r["transaction_ref"] == bank_ref("t2"))
    assert row["payer"] == "'" + FORMULA
    assert row["reference"].startswith("'+cmd")
    assert row["amount"] == "30.00"
    assert verify_report(written.path).ok


def test_a_formula_payer_comes_out_inert_in_the_xlsx(books: Engine, tmp_path: Path) -> None:
    make_user(books, "aud@acme.test", Role.AUDITOR, (TENANT,))
    written = write_report(_report(books), "xlsx", tmp_path / "r.xlsx")
    book = openpyxl.load_workbook(written.path)
    sheet = book["allocations"]
    header = [c.value for c in sheet[1]]
    row = next(r for r in sheet.iter_rows(min_row=2) if r[4].value == bank_ref("t2"))
    payer = row[header.index("payer")]
    assert payer.value == "'" + FORMULA and payer.data_type == "s"
    amount = row[header.index("amount")]
    assert amount.data_type == "n" and amount.number_format.endswith('"EUR"')
    assert sheet.freeze_panes == "A2"
    assert verify_report(written.path).ok


def test_the_three_formats_carry_the_same_content_and_verify(books: Engine, tmp_path: Path) -> None:
    make_user(books, "aud@acme.test", Role.AUDITOR, (TENANT,))
    report = _report(books)
    written = {
        fmt: write_report(report, fmt, tmp_path / f"r.{fmt}") for fmt in ("csv", "xlsx", "pdf")
    }
    assert len({w.digest for w in written.values()}) == 1
    assert len({w.signature for w in written.values()}) == 1
    for w in written.values():
        result = verify_report(w.path)
        assert result.ok, result.problem
        assert result.rows == w.rows


def test_open_exceptions_and_resolved_ones_carry_each_stored_field(books: Engine) -> None:
    """The sections read plain columns, not ORM objects: every field is still the stored one,
    the payer the payment's, the age counted from `generated_at`."""
    import datetime as dt

    from sqlalchemy import select

    from recon.db.models import ReconException, Transaction
    from recon.db.tenancy import tenant_session

    make_user(books, "aud@acme.test", Role.AUDITOR, (TENANT,))
    at = dt.datetime(2026, 12, 31, 12, 0, tzinfo=dt.UTC)
    report = build_report(books, "aud@acme.test", TENANT, FROM, TO, now=at)
    with tenant_session(books, TENANT) as session:
        stored = {e.id: e for e in session.scalars(select(ReconException))}
        payers = {
            f"{t.source}:{t.account_ref}:{t.source_id}": t.counterparty
            for t in session.scalars(select(Transaction))
        }
    assert report.open_exceptions
    for e in report.open_exceptions:
        s = stored[e.id]
        expected_age = (at.replace(tzinfo=None) - s.created_at.replace(tzinfo=None)).days
        assert (e.kind, e.created_at, e.transaction_ref, e.invoice_id, e.subject_ref) == (
            s.kind, s.created_at, s.transaction_ref, s.invoice_id, s.subject_ref,
        )  # fmt: skip
        assert (e.amount, e.currency, e.assignee, e.detail) == (
            s.amount_minor, s.currency, s.assignee, s.detail,
        )  # fmt: skip
        assert e.age_days == max(expected_age, 0)
        assert e.payer == (payers.get(s.transaction_ref) if s.transaction_ref else None)
        assert s.status == "open"
    resolved = [d for d in report.decisions if d.what.endswith(("exception resolved",
                                                                "exception closed"))]  # fmt: skip
    assert resolved, "the books have a person's resolved exception"
    for d in resolved:
        s = stored[d.ref_id]
        assert (d.at, d.who, d.what) == (
            s.resolved_at or s.updated_at, s.resolved_by, f"{s.kind} exception {s.status}",
        )  # fmt: skip
        assert (d.transaction_ref, d.invoice_id, d.amount, d.currency, d.detail, d.note) == (
            s.transaction_ref, s.invoice_id, s.amount_minor, s.currency,
            s.resolution_kind or "", s.resolution,
        )  # fmt: skip


def test_balance_movements_per_account_when_their_windows_differ(books: Engine) -> None:
    """Movements are summed per window shared by several accounts (one query each), and each
    account and currency still gets only its own booked bank lines between its snapshots."""
    import datetime as dt

    from recon.db.models import BalanceSnapshot
    from recon.db.tenancy import tenant_session
    from tests.integration.test_export_books import _txn

    def snap(account: str, day: int, amount: int) -> BalanceSnapshot:
        return BalanceSnapshot(
            tenant_id=TENANT, provider="bank", account_ref=account, balance_type="closingBooked",
            reference_date=dt.date(2026, 10, day), amount_minor=amount, currency="EUR",
        )  # fmt: skip

    with tenant_session(books, TENANT) as s:
        s.add_all([
            _txn("bank", "bank-2", "b1", 3, 100), _txn("bank", "bank-2", "b2", 6, 200),
            _txn("bank", "bank-2", "b3", 20, 400), _txn("bank", "bank-2", "b4", 25, 800),
            _txn("bank", "bank-2", "b5", 10, 1600, status="pending"),
            _txn("bank", "bank-2", "g1", 7, 50, currency="GBP"),
            _txn("bank", "bank-3", "c1", 4, 30), _txn("bank", "bank-3", "c2", 28, 70),
            snap("bank-2", 5, 1000), snap("bank-2", 20, 1600), snap("bank-3", 15, 5),
        ])  # fmt: skip
    make_user(books, "aud@acme.test", Role.AUDITOR, (TENANT,))
    got = {(b.account_ref, b.currency): b for b in _report(books).balances}
    assert set(got) == {("bank-1", "EUR"), ("bank-2", "EUR"), ("bank-2", "GBP"), ("bank-3", "EUR")}
    # bank-2 EUR: between its snapshots of the 5th and the 20th, so days 6..20: 200 + 400
    two = got[("bank-2", "EUR")]
    assert (two.opening, two.movements, two.closing, two.difference) == (1000, 600, 1600, 0)
    # bank-3 EUR: one snapshot (the 15th) closes it; movements from the period's start: 30
    assert (got[("bank-3", "EUR")].opening, got[("bank-3", "EUR")].movements) == (None, 30)
    # no snapshot: the whole period, the same window as bank-1's, each its own lines
    assert got[("bank-2", "GBP")].movements == 50
    assert got[("bank-1", "EUR")].movements == 10000 + 5000 + 20000 + 1000 - 500 + 4000
