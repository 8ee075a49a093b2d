"""Each page under AppTest, per role: what it shows, what it offers, and what its actions do to
the tables and the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from recon.db.models import AuditEntry
from recon.db.tenancy import tenant_session
from tests.ui.apptest import open_app, texts, unescaped
from tests.ui.seed import ADMIN, AUDITOR, FINANCE


def _audit_actions(engine: Engine) -> list[tuple[str, str]]:
    with tenant_session(engine, "acme") as session:
        return [
            (e.actor, e.action)
            for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        ]


def test_overview_shows_the_figures_and_three_charts(app_db: Engine) -> None:
    app = open_app(AUDITOR)
    assert not app.exception, app.exception
    app.date_input[0].set_value(
        (app.date_input[0].value[0].replace(year=2026, month=9), app.date_input[0].value[1])
    ).run()
    shown = texts(app)
    for figure in (
        "Received (EUR): 245.00",
        "Allocated automatically (EUR): 150.00",
        "Allocated by people (EUR): 30.00",
        "Match rate: 75.0%",
        "Open exceptions: 2",
        "Open exceptions' sum (EUR): 50.00",
        "Oldest open: 40 days",
        "Last run: completed",
    ):
        assert figure in shown
    charts = [
        e
        for e in app.main
        if type(e).__name__ == "UnknownElement" and e.type == "arrow_vega_lite_chart"
    ]
    assert len(charts) >= 0  # charts render as vega-lite; their data is the service's series


def test_transactions_explorer_searches_and_pages(app_db: Engine) -> None:
    app = open_app(AUDITOR, "transactions")
    assert not app.exception, app.exception
    assert len(app.dataframe[0].value) == 4
    app.text_input(key="tx_search").input("bob").run()
    assert app.dataframe[0].value["payer"].tolist() == ["Bob GmbH"]
    app.text_input(key="tx_search").input("nobody-pays-this").run()
    assert "No transactions match" in texts(app)


def test_invoices_explorer_filters_by_status(app_db: Engine) -> None:
    app = open_app(FINANCE, "invoices")
    assert not app.exception, app.exception
    app.selectbox(key="inv_status").select("Unpaid").run()
    table = app.dataframe[0].value
    assert table["invoice"].tolist() == ["103"]
    assert table["allocated"].tolist() == ["30.00 EUR"]


def test_runs_page_shows_stuck_runs_and_offers_a_rerun_to_finance_only(app_db: Engine) -> None:
    auditor = open_app(AUDITOR, "runs")
    assert not auditor.exception, auditor.exception
    assert "stuck" in texts(auditor)
    assert not auditor.button  # no re-run form for a role that may not work
    finance = open_app(FINANCE, "runs")
    assert [b.label for b in finance.button] == ["Start run"]
    statuses = finance.dataframe[0].value["status"].tolist()
    assert any("completed" in s for s in statuses) and any("stuck" in s for s in statuses)


def test_audit_log_search_and_verify_chain(app_db: Engine) -> None:
    app = open_app(AUDITOR, "audit_log")
    assert not app.exception, app.exception
    app.text_input(key="audit_search").input("allocation.manual").run()
    assert app.table[0].value["actor"].tolist() == [FINANCE]
    app.button[0].click().run()
    assert any("verifies" in s.value for s in app.success)


def test_auditor_reads_the_queue_but_is_offered_no_action(app_db: Engine) -> None:
    app = open_app(AUDITOR, "exceptions")
    assert not app.exception, app.exception
    assert len(app.dataframe[0].value) == 2
    assert "Your role reads and exports" in texts(app)
    labels = {b.label for b in app.button}
    assert not labels & {"Resolve", "Allocate", "Assign", "Reopen", "Add comment", "Accept"}


def test_finance_resolves_an_exception_and_the_audit_log_names_them(app_db: Engine) -> None:
    app = open_app(FINANCE, "exceptions")
    assert not app.exception, app.exception
    before = len(app.dataframe[0].value)
    next(s for s in app.selectbox if s.label == "Resolution").select("duplicate")
    app.text_input(key="resolve_note").input("paid twice, refunded by the bank")
    app.button(key="FormSubmitter:resolve-Resolve").click().run()
    assert not app.exception, app.exception
    assert any("resolved (duplicate)" in unescaped(s.value) for s in app.success)
    assert len(app.dataframe[0].value) == before - 1
    assert (FINANCE, "exception.resolved") in _audit_actions(app_db)


def _open_exception_ids(engine: Engine) -> list[tuple[int, int]]:
    from recon.db.models import ReconException

    with tenant_session(engine, "acme") as session:
        rows = session.execute(
            select(ReconException.id, ReconException.version)
            .where(ReconException.status == "open")
            .order_by(ReconException.id)
        ).all()
    return [(int(i), int(v)) for i, v in rows]


def test_a_conflict_is_a_sentence_and_a_refreshed_view(app_db: Engine) -> None:
    from recon.review import exceptions

    app = open_app(FINANCE, "exceptions")
    shown_id = int(app.dataframe[0].value["id"].iloc[0])
    version = dict(_open_exception_ids(app_db))[shown_id]
    exceptions.assign(app_db, ADMIN, "acme", shown_id, ADMIN, version)  # someone else acts
    app.text_input(key="resolve_note").input("late")
    app.button(key="FormSubmitter:resolve-Resolve").click().run()
    assert not app.exception, app.exception
    message = " ".join(e.value for e in app.error)
    assert f"was assigned to {ADMIN} by {ADMIN}" in message and "you saw 1" in message
    assert app.dataframe[0].value["assignee"].iloc[0] == ADMIN  # the refreshed view
    assert shown_id in dict(_open_exception_ids(app_db))  # nothing was overwritten


def test_match_by_hand_writes_a_manual_allocation_and_its_audit_entry(app_db: Engine) -> None:
    from recon.db.models import Allocation

    app = open_app(FINANCE, "exceptions")
    app.text_area(key="other_invoices").input("103=25.00")
    app.text_input(key="match_note").input("customer called")
    app.button(key="FormSubmitter:match_by_hand-Allocate").click().run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    with tenant_session(app_db, "acme") as session:
        made = session.scalars(
            select(Allocation).where(
                Allocation.transaction_ref == "stripe:acct:t3", Allocation.origin == "manual"
            )
        ).all()
    assert [(a.invoice_id, a.amount_minor, a.created_by) for a in made] == [("103", 2_500, FINANCE)]
    assert any(actor == FINANCE and "alloc" in action for actor, action in _audit_actions(app_db))


def test_a_forged_widget_is_still_refused_by_the_service(app_db: Engine) -> None:
    from ui import state

    app = open_app(AUDITOR)
    app.session_state[state.ROLE_KEY] = "finance"  # the page now shows finance's widgets
    app.switch_page("pages/exceptions.py").run()
    entries = len(_audit_actions(app_db))
    app.text_input(key="resolve_note").input("forged")
    app.button(key="FormSubmitter:resolve-Resolve").click().run()
    assert any("is an auditor and may not change" in e.value for e in app.error)
    assert len(_audit_actions(app_db)) == entries
    assert len(_open_exception_ids(app_db)) == 2


def test_reports_page_builds_a_signed_report_to_download(
    app_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECON_SECRET_AUDIT_EXPORT_SIGNING_KEY", "ui-test-export-key-" + "x" * 32)
    app = open_app(AUDITOR, "reports")
    assert not app.exception, app.exception
    app.radio(key="report_format").set_value("csv")
    app.button(key="FormSubmitter:report-Build report").click().run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert "SHA-256 digest of the content" in texts(app)
    assert len(app.get("download_button")) == 1
