"""The report on what a real reconcile run stored (the sandbox world, the production code path):
the tie-outs balance, or name the exception that explains the difference; and the three formats
parsed back carry the same totals."""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
import zipfile
from pathlib import Path

import openpyxl
import pytest

from flows.reconcile import reconcile
from recon.db.models import ReconException
from recon.db.tenancy import tenant_session
from recon.reports import build_report, verify_report, write_report
from recon.review.access import Role
from tests.people import make_user
from tests.pipeline.conftest import AS_OF, TENANT, Pipeline, pipeline, prefect_harness, sandbox

__all__ = ["pipeline", "prefect_harness", "sandbox"]

WINDOW = (AS_OF - dt.timedelta(days=59), AS_OF)


def _summary_totals_csv(path: Path) -> dict[tuple[str, str], list[str]]:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("_summary.csv"))
        rows = list(csv.reader(io.TextIOWrapper(archive.open(name), encoding="utf-8")))
    return {(r[0], r[1]): r[2:] for r in rows[1:]}


def _summary_totals_xlsx(path: Path) -> dict[tuple[str, str], list[str]]:
    from recon.money import format_amount
    from recon.reports.cells import parse_number
    from recon.reports.model import Column, Kind

    amount = Column("amount", Kind.AMOUNT, "currency")
    book = openpyxl.load_workbook(path, read_only=True)
    rows = list(book["summary"].iter_rows(values_only=True))
    book.close()
    out = {}
    for r in rows[1:]:
        currency = str(r[1])
        cells = [str(r[2])]
        cells += [format_amount(parse_number(amount, v, currency), currency) for v in r[3:]]
        out[(str(r[0]), currency)] = cells
    return out


def test_the_tie_outs_balance_on_a_real_run_and_the_formats_agree(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECON_SECRET_AUDIT_EXPORT_SIGNING_KEY", secrets.token_hex(32))
    reconcile(tenant=TENANT, date_from=WINDOW[0], date_to=WINDOW[1])
    make_user(pipeline.engine, "aud@acme.test", Role.AUDITOR, (TENANT,))
    report = build_report(pipeline.engine, "aud@acme.test", TENANT, *WINDOW)

    assert report.allocation_count > 100 and report.audit.ok
    assert report.bank and all(b.difference == 0 for b in report.bank), report.bank
    assert sum(b.payouts for b in report.bank) > 0
    with tenant_session(pipeline.engine, TENANT) as session:
        # a payout's difference is explained by the engine's exception about the payout, or (a
        # short credit) about the bank line it arrived as
        explained = {
            ref
            for e in session.query(ReconException).filter(ReconException.kind.like("payout_%"))
            for ref in (e.subject_ref, e.transaction_ref)
        }
    matched = [p for p in report.payouts if p.bank_credit is not None]
    assert matched
    for p in report.payouts:
        balanced = p.lines_difference == 0 and p.bank_difference == 0
        assert balanced or {p.payout_id, p.bank_ref} & explained, p
    assert all(r.difference == 0 for r in report.recorded), report.recorded
    assert all(b.opening is None for b in report.balances)  # one run: no tie-out yet

    written = {f: write_report(report, f, tmp_path / f"r.{f}") for f in ("csv", "xlsx", "pdf")}
    assert all(verify_report(w.path).ok for w in written.values())
    assert len({w.digest for w in written.values()}) == 1
    from_csv = _summary_totals_csv(written["csv"].path)
    assert from_csv == _summary_totals_xlsx(written["xlsx"].path)
    assert sum(int(v[0]) for v in from_csv.values()) == sum(s.transactions for s in report.summary)
