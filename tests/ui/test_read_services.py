"""The UI's read services (overview, runs, explorers, audit) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from recon.errors import PermissionDeniedError
from recon.review import explore, overview
from tests.ui.seed import AUDITOR, DAY, FINANCE, OUTSIDER

END = DAY.replace(day=31)


def test_overview_figures_are_aggregated_per_currency(seeded: Engine) -> None:
    view = overview.overview(seeded, AUDITOR, "acme", DAY, END)
    assert view.received == (overview.Amount("EUR", 24_500),)
    assert view.allocated_auto == (overview.Amount("EUR", 15_000),)
    # the reversed manual allocation no longer counts; its replacement does
    assert view.allocated_manual == (overview.Amount("EUR", 3_000),)
    assert (view.payments, view.matched_payments) == (4, 3)
    assert view.match_rate == pytest.approx(0.75)
    assert view.open_count == 2
    assert view.open_sum == (overview.Amount("EUR", 5_000),)
    assert view.oldest_open_days == 40
    assert {(a.age, a.kind, a.count) for a in view.open_by_age_kind} == {
        ("0-7 d", "unmatched_payment", 1),
        ("31-90 d", "ambiguous", 1),
    }
    assert [(d.day, d.payments, d.matched) for d in view.match_rate_by_day] == [
        (DAY, 2, 2),
        (DAY.replace(day=2), 2, 1),
    ]
    assert {(s.source, s.minor) for s in view.received_by_source} == {
        ("bank", 22_000),
        ("stripe", 2_500),
    }
    assert view.last_run is not None and view.last_run.status == "completed"


def test_runs_show_failures_quarantine_and_a_stuck_run(seeded: Engine) -> None:
    runs = overview.recent_runs(seeded, FINANCE, "acme")
    assert [r.shown_status for r in runs] == ["completed", "stuck"]
    done = runs[0]
    assert done.validation_failures[0].expectations == (
        "expect_column_values_to_not_be_null(currency)",
    )
    assert done.quarantined[0].reasons == ("currency: missing",)
    assert done.duration_seconds == pytest.approx(60, abs=1)


def test_transactions_explorer_pages_by_keyset_with_allocations(seeded: Engine) -> None:
    first = explore.transactions_page(seeded, FINANCE, "acme", limit=3)
    assert len(first.rows) == 3 and first.next_after is not None
    second = explore.transactions_page(seeded, FINANCE, "acme", after=first.next_after, limit=3)
    assert len(second.rows) == 1 and second.next_after is None
    seen = [r.ref for r in first.rows + second.rows]
    assert len(set(seen)) == 4
    carol = next(r for r in first.rows + second.rows if r.counterparty == "Carol SA")
    assert carol.allocated_minor == 3_000
    assert [a.live for a in carol.allocations] == [False, False, True]
    found = explore.transactions_page(seeded, FINANCE, "acme", search="bob")
    assert [r.counterparty for r in found.rows] == ["Bob GmbH"]
    assert explore.transactions_page(seeded, FINANCE, "acme", search="100%").rows == ()
    stripe = explore.transactions_page(seeded, FINANCE, "acme", source="stripe")
    assert [r.source for r in stripe.rows] == ["stripe"]


def test_invoices_explorer_filters_and_shows_payments(seeded: Engine) -> None:
    unpaid = explore.invoices_page(seeded, AUDITOR, "acme", status="Unpaid")
    assert [i.invoice_id for i in unpaid.rows] == ["103"]
    assert unpaid.rows[0].allocated_minor == 3_000
    found = explore.invoices_page(seeded, AUDITOR, "acme", search="client 1")
    assert [i.invoice_id for i in found.rows] == ["101"]


def test_audit_search_and_chain_verdict(seeded: Engine) -> None:
    page = explore.audit_page(seeded, AUDITOR, "acme", search="allocation.manual")
    assert [(r.actor, r.details) for r in page.rows] == [(FINANCE, {"note": "paid by phone"})]
    verdict = explore.verify_audit_chain(seeded, AUDITOR, "acme")
    assert verdict.ok and verdict.entries == 2
    assert "verifies" in verdict.message


def test_a_user_without_a_grant_sees_nothing_of_the_tenant(seeded: Engine) -> None:
    calls = [
        lambda: overview.overview(seeded, OUTSIDER, "acme", DAY, END),
        lambda: overview.recent_runs(seeded, OUTSIDER, "acme"),
        lambda: explore.transactions_page(seeded, OUTSIDER, "acme"),
        lambda: explore.invoices_page(seeded, OUTSIDER, "acme"),
        lambda: explore.audit_page(seeded, OUTSIDER, "acme"),
        lambda: explore.verify_audit_chain(seeded, OUTSIDER, "acme"),
    ]
    for call in calls:
        with pytest.raises(PermissionDeniedError, match="no access to tenant 'acme'"):
            call()


def test_a_rerun_request_needs_work_and_is_audited(seeded: Engine) -> None:
    with pytest.raises(PermissionDeniedError, match="is an auditor and may not change"):
        overview.request_run(seeded, AUDITOR, "acme", DAY, END)
    request = overview.request_run(seeded, FINANCE, "acme", DAY, END)
    page = explore.audit_page(seeded, AUDITOR, "acme", action="run.requested")
    assert [(r.seq, r.actor, r.details) for r in page.rows] == [
        (request.audit_seq, FINANCE, {"date_from": str(DAY), "date_to": str(END)})
    ]
    assert overview.data_version(seeded, AUDITOR, "acme") == request.audit_seq
    assert overview.latest_booking(seeded, AUDITOR, "acme") == DAY.replace(day=2)
