"""Bulk accept on the Exceptions page, under AppTest on SQLite and PostgreSQL: a finance user
selects several exceptions and accepts the engine's suggestions for them in one call (each
becomes a manual allocation by that user, audited in their name, and the exceptions leave the
open queue); an auditor is offered no bulk control, and a forged bulk accept (the widget shown
to an auditor, or the service called directly) is refused by the service."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from streamlit.testing.v1 import AppTest

from recon.db.base import utcnow
from recon.db.models import Allocation, AuditEntry, Invoice, ReconException, Transaction
from recon.db.tenancy import tenant_session
from recon.errors import ReconError
from recon.review import allocations
from tests.ui.apptest import open_app, point_at, texts, unescaped
from tests.ui.seed import AUDITOR, DAY, FINANCE, seed

TABLE = "exc_table"
BULK = "Accept the suggestions of the"
FLOOR_SUBMIT = "FormSubmitter:bulk_accept-Accept suggestions at or above"
# (transaction number, invoice, amount in cents, confidence of the engine's suggestion)
SUGGESTED = ((11, "111", 4_200, 85), (12, "112", 1_300, 80), (13, "113", 990, 60))


def _ref(n: int) -> str:
    return f"bank:acct:t{n}"


def _add_suggestions(engine: Engine) -> None:
    """Three bank payments, each with an open invoice the engine suggested for review and an
    `ambiguous` exception naming a runner-up (what puts a suggested payment in the queue)."""
    now = utcnow()
    with tenant_session(engine, "acme") as session:
        for n, invoice, amount, confidence in SUGGESTED:
            session.add(
                Transaction(
                    tenant_id="acme",
                    source="bank",
                    account_ref="acct",
                    source_id=f"t{n}",
                    kind="payment",
                    booked_on=DAY,
                    amount_minor=amount,
                    currency="EUR",
                    counterparty=f"Payer {n}",
                    reference=f"order {n}",
                )
            )
            session.add(
                Invoice(
                    tenant_id="acme",
                    invoice_id=invoice,
                    invoice_num=f"INV-{invoice}",
                    client_id=invoice,
                    client_name=f"Client {invoice}",
                    issued_on=DAY - dt.timedelta(days=5),
                    total_minor=amount,
                    balance_minor=amount,
                    currency="EUR",
                    status="Unpaid",
                )
            )
            session.add(
                Allocation(
                    tenant_id="acme",
                    allocation_key=f"s{n:063d}",
                    transaction_ref=_ref(n),
                    invoice_id=invoice,
                    amount_minor=amount,
                    currency="EUR",
                    rule="name_amount",
                    confidence=confidence,
                    decision="review",
                )
            )
            session.add(
                ReconException(
                    tenant_id="acme",
                    exception_key=f"e{n:063x}",
                    kind="ambiguous",
                    transaction_ref=_ref(n),
                    invoice_id="101",
                    amount_minor=amount,
                    currency="EUR",
                    created_at=now - dt.timedelta(days=n),
                    detail="another candidate: invoice 101, confidence 55 (name_amount)",
                )
            )


@pytest.fixture(params=["sqlite", "postgresql"])
def bulk_db(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The seeded books plus three suggestions, the app pointed at the same database (on
    PostgreSQL through the RLS-bound application role)."""
    if request.param == "sqlite":
        engine: Engine = request.getfixturevalue("sqlite_engine")
        seed(engine)
        url: str = request.getfixturevalue("sqlite_url")
    else:
        engine = request.getfixturevalue("pg_app_engine")
        seed(engine, request.getfixturevalue("pg_owner_engine"))
        url = request.getfixturevalue("pg_app_url")
    _add_suggestions(engine)
    point_at(monkeypatch, url)
    yield engine


def _suggestion_ids(engine: Engine) -> dict[str, int]:
    with tenant_session(engine, "acme") as session:
        rows = session.execute(
            select(Allocation.transaction_ref, Allocation.id).where(Allocation.decision == "review")
        ).all()
    return {str(ref): int(i) for ref, i in rows}


def _made_by_people(engine: Engine) -> list[tuple[str, str, int, str, str, str | None]]:
    with tenant_session(engine, "acme") as session:
        rows = session.scalars(
            select(Allocation)
            .where(Allocation.transaction_ref.in_([_ref(n) for n, *_ in SUGGESTED]))
            .where(Allocation.created_by != "engine")
            .order_by(Allocation.transaction_ref, Allocation.id)
        ).all()
        return [
            (a.transaction_ref, a.invoice_id, a.amount_minor, a.decision, a.created_by, a.note)
            for a in rows
        ]


def _audit(engine: Engine) -> list[tuple[str, str, dict[str, object]]]:
    with tenant_session(engine, "acme") as session:
        return [
            (e.actor, e.action, dict(e.details or {}))
            for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        ]


def _open_refs(engine: Engine) -> set[str]:
    with tenant_session(engine, "acme") as session:
        return {
            str(r)
            for r in session.scalars(
                select(ReconException.transaction_ref).where(ReconException.status == "open")
            )
        }


def _exception_ids(engine: Engine) -> dict[str, int]:
    """The `ambiguous` exception of each suggested payment, by payment."""
    with tenant_session(engine, "acme") as session:
        rows = session.execute(
            select(ReconException.transaction_ref, ReconException.id).where(
                ReconException.kind == "ambiguous"
            )
        ).all()
    return {str(ref): int(i) for ref, i in rows}


def _select(app: AppTest, exception_ids: set[int]) -> None:
    """Select (as clicks in the queue table would) the rows of these exceptions."""
    table = app.dataframe[0].value
    rows = [i for i, exc_id in enumerate(table["id"]) if int(exc_id) in exception_ids]
    assert len(rows) == len(exception_ids)
    app.session_state[TABLE] = {"selection": {"rows": rows, "columns": []}}
    app.run()


def test_finance_accepts_the_selected_suggestions_in_bulk(bulk_db: Engine) -> None:
    ids = _exception_ids(bulk_db)
    suggestions = _suggestion_ids(bulk_db)
    audited_before = len(_audit(bulk_db))
    app = open_app(FINANCE, "exceptions")
    assert not app.exception, app.exception
    assert len(app.dataframe[0].value) == 5  # the two seeded exceptions and the three new ones
    chosen = [_ref(11), _ref(12)]
    _select(app, {ids[r] for r in chosen})
    bulk = next(b for b in app.button if b.label.startswith(BULK))
    assert bulk.label == f"{BULK} 2 selected"
    bulk.click().run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert any("2 suggestion(s) accepted" in unescaped(s.value) for s in app.success)
    # the selection is forgotten: its row numbers would now name other exceptions
    assert not [b.label for b in app.button if b.label.startswith(BULK)]

    # each accepted suggestion: reversed and replaced by a manual row in the user's name
    made = _made_by_people(bulk_db)
    for n, invoice, amount, confidence in SUGGESTED[:2]:
        text = f"accepted suggestion {suggestions[_ref(n)]} (name_amount, {confidence})"
        assert (_ref(n), invoice, -amount, "review", FINANCE, None) in made
        assert (_ref(n), invoice, amount, "manual", FINANCE, text) in made
    assert len(made) == 4  # the third suggestion was not selected and is untouched
    with tenant_session(bulk_db, "acme") as session:
        manual = session.scalars(
            select(Allocation).where(Allocation.decision == "manual", Allocation.rule != "manual")
        ).all()
        assert {(a.origin, a.confidence) for a in manual} == {("manual", 85), ("manual", 80)}

    # the audit log names the user for every write, and the rows it names
    entries = _audit(bulk_db)[audited_before:]
    assert {actor for actor, _, _ in entries} == {FINANCE}
    by_action: dict[str, list[dict[str, object]]] = {}
    for _, action, details in entries:
        by_action.setdefault(action, []).append(details)
    assert sorted(str(d["transaction_ref"]) for d in by_action["allocation.manual"]) == chosen
    assert sorted(str(d["reverses_id"]) for d in by_action["allocation.reversed"]) == sorted(
        str(suggestions[r]) for r in chosen
    )
    assert sorted(str(d["exception_id"]) for d in by_action["exception.resolved"]) == sorted(
        str(ids[r]) for r in chosen
    )

    # the two exceptions left the open queue; the page shows the three still open
    assert _open_refs(bulk_db) == {"stripe:acct:t3", _ref(13)}
    shown = {int(i) for i in app.dataframe[0].value["id"]}
    assert not shown & {ids[r] for r in chosen}
    assert ids[_ref(13)] in shown and len(shown) == 3


def test_finance_accepts_every_suggestion_at_or_above_a_confidence(bulk_db: Engine) -> None:
    app = open_app(FINANCE, "exceptions")
    next(s for s in app.slider if s.label == "Minimum confidence").set_value(75)
    app.button(key=FLOOR_SUBMIT).click().run()
    assert not app.exception, app.exception
    assert any("2 suggestion(s) accepted" in unescaped(s.value) for s in app.success)
    assert {(ref, decision) for ref, _, _, decision, *_ in _made_by_people(bulk_db)} == {
        (_ref(11), "manual"), (_ref(11), "review"), (_ref(12), "manual"), (_ref(12), "review"),
    }  # fmt: skip
    assert _open_refs(bulk_db) == {"stripe:acct:t3", _ref(13)}


def test_an_auditor_is_offered_no_bulk_accept(bulk_db: Engine) -> None:
    ids = _exception_ids(bulk_db)
    app = open_app(AUDITOR, "exceptions")
    assert not app.exception, app.exception
    _select(app, {ids[_ref(11)], ids[_ref(12)]})
    assert not app.exception, app.exception
    assert not [b.label for b in app.button if "ccept" in b.label]
    assert not app.slider  # the confidence floor lives in the bulk form
    assert "Your role reads and exports" in texts(app)


def test_a_forged_bulk_accept_by_an_auditor_is_refused_by_the_service(bulk_db: Engine) -> None:
    from ui import state

    ids = _exception_ids(bulk_db)
    before = (_audit(bulk_db), _made_by_people(bulk_db), _open_refs(bulk_db))
    app = open_app(AUDITOR)
    app.session_state[state.ROLE_KEY] = "finance"  # the page now draws finance's widgets
    app.switch_page("pages/exceptions.py").run()
    _select(app, {ids[_ref(11)], ids[_ref(12)]})
    next(b for b in app.button if b.label.startswith(BULK)).click().run()
    assert not app.exception, app.exception
    assert any("is an auditor and may not change" in e.value for e in app.error)
    app.button(key=FLOOR_SUBMIT).click().run()
    assert any("is an auditor and may not change" in e.value for e in app.error)
    # the action the widget calls, called directly
    with pytest.raises(ReconError, match="is an auditor and may not change"):
        allocations.accept_suggestions(
            bulk_db, AUDITOR, "acme", allocation_ids=list(_suggestion_ids(bulk_db).values())
        )
    assert (_audit(bulk_db), _made_by_people(bulk_db), _open_refs(bulk_db)) == before
