"""Work on one exception (assign, unassign, comment, resolve, reopen) through the service layer
and the `recon exceptions` CLI, on SQLite and on PostgreSQL (the application role): versions,
stale writes refused with who/what/when, auditors refused, rules as sentences, each write's
audit entry naming the user, and a later engine run leaving a resolved exception resolved."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select

from apps.cli.main import main
from recon.db.models import AuditEntry, ReconException
from recon.db.tenancy import tenant_session
from recon.errors import ConflictError, NotFoundError, PermissionDeniedError, RuleViolationError
from recon.review.access import Role
from recon.review.exceptions import (
    assign,
    comment,
    current_version,
    exception_detail,
    reopen,
    resolve,
    unassign,
)
from recon.review.views import ResolutionKind
from tests.integration.test_review_queue import AUD, FIN, OUT, Books, books
from tests.people import make_user

ANA = "ana@acme.test"
__all__ = ["books"]  # the fixture, shared with the queue tests


def _entries(engine: Engine, exception_id: int) -> list[tuple[str, str, dict[str, object]]]:
    with tenant_session(engine, "acme") as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        return [
            (e.actor, e.action, e.details)
            for e in rows
            if e.entity == "exception" and e.details.get("exception_id") == exception_id
        ]


def test_each_write_moves_the_version_names_the_user_and_is_audited(books: Books) -> None:
    make_user(books.app, ANA, Role.FINANCE, ("acme",))
    e1 = books.ids["e1"]
    view = assign(books.app, FIN, "acme", e1, "Ana@acme.test", expected_version=1)
    assert (view.assignee, view.version, view.updated_by) == (ANA, 2, FIN)
    note = comment(books.app, ANA, "acme", e1, "  called the bank  ")
    assert (note.author, note.body) == (ANA, "called the bank")
    assert current_version(books.app, FIN, "acme", e1) == 2  # a comment bumps nothing
    view = unassign(books.app, ANA, "acme", e1, expected_version=2)
    assert (view.assignee, view.version, view.updated_by) == (None, 3, ANA)
    view = resolve(books.app, FIN, "acme", e1, ResolutionKind.NOT_CUSTOMER, "a refund", 3)
    assert (view.status, view.resolution_kind, view.resolution_note) == (
        "resolved", "not_customer", "a refund",
    )  # fmt: skip
    assert (view.resolved_by, view.version) == (FIN, 4)
    view = reopen(books.app, ANA, "acme", e1, 4, note="the bank says otherwise")
    assert (view.status, view.resolution_kind, view.resolved_by, view.version) == (
        "open", None, None, 5,
    )  # fmt: skip
    entries = _entries(books.app, e1)
    assert [(actor, action) for actor, action, _ in entries] == [
        (FIN, "exception.assigned"),
        (ANA, "exception.commented"),
        (ANA, "exception.unassigned"),
        (FIN, "exception.resolved"),
        (ANA, "exception.reopened"),
    ]
    resolved = entries[3][2]
    assert resolved["before"] == {
        "status": "open", "assignee": None, "resolution_kind": None, "resolution": None,
        "resolved_by": None, "version": 3,
    }  # fmt: skip
    assert resolved["after"]["status"] == "resolved"  # type: ignore[index]
    assert resolved["after"]["version"] == 4  # type: ignore[index]
    detail = exception_detail(books.app, AUD, "acme", e1)
    assert [c.body for c in detail.comments] == ["called the bank"]
    assert [h.action for h in detail.history][-1] == "exception.reopened"


def test_the_second_of_two_writers_gets_a_conflict_naming_the_first(books: Books) -> None:
    make_user(books.app, ANA, Role.FINANCE, ("acme",))
    e3 = books.ids["e3"]
    seen_by_fin = current_version(books.app, FIN, "acme", e3)
    seen_by_ana = current_version(books.app, ANA, "acme", e3)
    resolve(books.app, ANA, "acme", e3, "duplicate", "paid twice", seen_by_ana)
    with pytest.raises(ConflictError) as refused:
        assign(books.app, FIN, "acme", e3, FIN, seen_by_fin)
    message = str(refused.value)
    assert message.startswith(f"exception {e3} was resolved by {ANA} at ")
    assert " UTC (version 2, you saw 1); reload and try again" in message
    with pytest.raises(ConflictError, match=f"was resolved by {ANA}"):
        resolve(books.app, FIN, "acme", e3, "other", None, seen_by_fin)
    with tenant_session(books.app, "acme") as session:
        row = session.get(ReconException, e3)
        assert row is not None
        assert (row.resolution_kind, row.resolved_by, row.assignee) == ("duplicate", ANA, None)


def test_two_writers_at_the_same_moment_queue_and_the_second_gets_a_conflict(
    books: Books, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first writer holds the row (PostgreSQL) or the write lock (SQLite) while it works;
    the second waits for it, then finds the version moved: a ConflictError, not a lost write."""
    from recon.review import exceptions as service

    make_user(books.app, ANA, Role.FINANCE, ("acme",))
    e1 = books.ids["e1"]
    first_inside, second_started, go = threading.Event(), threading.Event(), threading.Event()
    real_check, real_lock = service._require_open, service._take_write_lock

    def held(row: ReconException, doing: str) -> None:
        if threading.current_thread().name == "first":
            first_inside.set()
            assert go.wait(timeout=60)
        real_check(row, doing)

    def announced(session: Any) -> None:
        if threading.current_thread().name == "second":
            second_started.set()
        real_lock(session)

    monkeypatch.setattr(service, "_require_open", held)
    monkeypatch.setattr(service, "_take_write_lock", announced)
    outcome: dict[str, object] = {}

    def first() -> None:
        outcome["first"] = resolve(books.app, ANA, "acme", e1, "other", "first", 1)

    def second() -> None:
        try:
            outcome["second"] = assign(books.app, FIN, "acme", e1, FIN, 1)
        except ConflictError as exc:
            outcome["second"] = exc

    one = threading.Thread(target=first, name="first")
    one.start()
    assert first_inside.wait(timeout=60)
    two = threading.Thread(target=second, name="second")
    two.start()
    assert second_started.wait(timeout=60)
    go.set()
    one.join(timeout=120)
    two.join(timeout=120)
    assert getattr(outcome["first"], "version", None) == 2
    refused = outcome["second"]
    assert isinstance(refused, ConflictError), refused
    assert f"exception {e1} was resolved by {ANA}" in str(refused)


def test_a_write_stale_after_an_engine_change_names_the_engine(books: Books) -> None:
    e1 = books.ids["e1"]
    with tenant_session(books.app, "acme") as session:  # what store_exceptions does
        row = session.get(ReconException, e1)
        assert row is not None
        row.detail, row.updated_by = "raised again with a new amount", "engine"
    with pytest.raises(ConflictError, match=f"exception {e1} was changed by the engine at "):
        assign(books.app, FIN, "acme", e1, FIN, 1)


def test_an_auditor_is_refused_every_write(books: Books) -> None:
    e1 = books.ids["e1"]
    writes = (
        lambda: assign(books.app, AUD, "acme", e1, FIN, 1),
        lambda: unassign(books.app, AUD, "acme", books.ids["e2"], 1),
        lambda: comment(books.app, AUD, "acme", e1, "hello"),
        lambda: resolve(books.app, AUD, "acme", e1, "other", None, 1),
        lambda: reopen(books.app, AUD, "acme", books.ids["e4"], 1),
    )
    for write in writes:
        with pytest.raises(PermissionDeniedError, match="is an auditor and may not change"):
            write()
    with pytest.raises(PermissionDeniedError, match="no access to tenant 'acme'"):
        assign(books.app, OUT, "acme", e1, OUT, 1)
    assert _entries(books.app, e1) == []


def test_broken_rules_are_refused_with_a_sentence(books: Books) -> None:
    make_user(books.app, "gone@acme.test", Role.FINANCE, ("acme",), active=False)
    e1, e4 = books.ids["e1"], books.ids["e4"]
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: resolve(books.app, FIN, "acme", e4, "other", None, 1), "already resolved"),
        (lambda: reopen(books.app, FIN, "acme", e1, 1), "is open already"),
        (lambda: unassign(books.app, FIN, "acme", e1, 1), "not assigned to anyone"),
        (lambda: assign(books.app, FIN, "acme", e4, FIN, 1), "reopen it first"),
        (lambda: assign(books.app, FIN, "acme", e1, AUD, 1), "auditor and cannot work"),
        (lambda: assign(books.app, FIN, "acme", e1, OUT, 1), "no access to tenant 'acme'"),
        (lambda: assign(books.app, FIN, "acme", e1, "gone@acme.test", 1), "is disabled"),
        (lambda: resolve(books.app, FIN, "acme", e1, "lost", None, 1), "not a resolution"),
        (lambda: comment(books.app, FIN, "acme", e1, "   "), "needs some text"),
    ]
    for call, sentence in cases:
        with pytest.raises(RuleViolationError, match=sentence):
            call()
    with pytest.raises(NotFoundError, match=r"no user 'nobody@acme\.test'"):
        assign(books.app, FIN, "acme", e1, "nobody@acme.test", 1)
    globex_only = _globex_exception(books.app)
    with pytest.raises(NotFoundError, match=f"no exception {globex_only} in tenant 'acme'"):
        resolve(books.app, FIN, "acme", globex_only, "other", None, 1)
    assert current_version(books.app, FIN, "acme", e1) == 1


def _globex_exception(engine: Engine) -> int:
    with tenant_session(engine, "globex") as session:
        return int(session.scalars(select(ReconException.id)).one())


# -- people win over the engine --------------------------------------------------------------------


def test_a_later_run_leaves_a_resolved_exception_resolved(books: Books) -> None:
    from recon.db.models import Invoice, Transaction
    from tasks.reconcile import reconcile_window

    window = (dt.date(2026, 11, 20), dt.date(2026, 11, 30))
    with tenant_session(books.app, "acme") as session:
        session.add(Invoice(invoice_id="7001", client_id="70", client_name="Late Payer",
                            issued_on=dt.date(2026, 11, 1), total_minor=4200, balance_minor=0,
                            currency="EUR", status="Paid"))  # fmt: skip
        session.add(Transaction(source="bank", account_ref="acc1", source_id="late",
                                booked_on=dt.date(2026, 11, 25), amount_minor=4200,
                                currency="EUR", counterparty="Late Payer",
                                reference="Invoice 7001"))  # fmt: skip
    reconcile_window(books.app, "acme", window, run_id="first")
    with tenant_session(books.app, "acme") as session:
        raised = session.scalars(
            select(ReconException).where(ReconException.transaction_ref == "bank:acc1:late")
        ).one()
        key, exception_id, version = raised.exception_key, raised.id, raised.version
    assert raised.status == "open"
    resolve(books.app, FIN, "acme", exception_id, "refunded", "sent back", version)
    reconcile_window(books.app, "acme", window, run_id="second")
    with tenant_session(books.app, "acme") as session:
        rows = session.scalars(
            select(ReconException).where(ReconException.transaction_ref == "bank:acc1:late")
        ).all()
    assert [(r.exception_key, r.status, r.resolution_kind, r.version) for r in rows] == [
        (key, "resolved", "refunded", version + 1)
    ]


# -- the CLI ---------------------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["exceptions", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_url(books: Books, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the CLI at the books' database (the application role on PostgreSQL)."""
    url = books.app.url.render_as_string(hide_password=False)
    monkeypatch.setenv("RECON_DATABASE_URL", url)
    return url


def test_the_cli_lists_shows_and_works_the_queue(
    books: Books, cli_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    e1, e3 = str(books.ids["e1"]), str(books.ids["e3"])
    code, out, err = _cli(capsys, "list", "--tenant", "acme", "--as", FIN, "--json",
                          "--min", "50", "--max", "100.00")  # fmt: skip
    assert (code, err) == (0, "")
    listed = json.loads(out)
    assert [(i["id"], i["amount"], i["currency"], i["assignee"], i["version"]) for i in listed] == [
        (books.ids["e2"], "50.00", "EUR", FIN, 1), (books.ids["e1"], "100.00", "EUR", None, 1),
    ]  # fmt: skip
    code, out, _ = _cli(capsys, "list", "--tenant", "acme", "--as", FIN, "--search", "widgets")
    assert code == 0 and "Widgets" in out and "Jane" not in out
    code, out, _ = _cli(capsys, "show", e1, "--tenant", "acme", "--as", AUD, "--json")
    shown = json.loads(out)
    assert shown["payment"]["raw_record"]["transactionId"] == "b1"
    assert shown["exception"]["version"] == 1
    code, out, _ = _cli(capsys, "assign", e1, "--tenant", "acme", "--as", FIN, "--to", FIN)
    assert (code, out.strip()) == (0, f"exception {e1} assigned to {FIN} (version 2)")
    code, out, _ = _cli(capsys, "comment", e1, "--tenant", "acme", "--as", FIN, "--text", "hi")
    assert code == 0
    code, out, err = _cli(capsys, "resolve", e1, "--tenant", "acme", "--as", FIN,
                          "--resolution", "matched", "--note", "by hand", "--version", "1")  # fmt: skip
    assert code == 14 and f"exception {e1} was assigned to {FIN} by {FIN}" in err
    assert "Traceback" not in err
    code, out, _ = _cli(capsys, "resolve", e1, "--tenant", "acme", "--as", FIN,
                        "--resolution", "matched", "--version", "2", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["status"] == "resolved"
    code, _, err = _cli(capsys, "reopen", e1, "--tenant", "acme", "--as", AUD)
    assert code == 13 and "auditor" in err
    code, _, err = _cli(capsys, "reopen", e3, "--tenant", "acme", "--as", FIN)
    assert code == 15 and "is open already" in err
    code, _, err = _cli(capsys, "show", e1, "--tenant", "acme", "--as", OUT)
    assert code == 13 and "no access to tenant 'acme'" in err
    code, out, _ = _cli(capsys, "show", e1, "--tenant", "acme", "--as", FIN)
    assert code == 0 and "exception.resolved" in out
