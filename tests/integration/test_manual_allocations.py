"""Matching by hand through the service layer and the CLI, on SQLite and the PostgreSQL app role:
allocate, unallocate, accept suggestions; every rule refused with a sentence naming the numbers;
every row audited under the person's email."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select, text

from recon.canonical import transaction_ref
from recon.db.models import (
    Allocation,
    AuditEntry,
    Invoice,
    ReconException,
    RecordedPayment,
    Transaction,
)
from recon.db.tenancy import admin_session, tenant_session
from recon.errors import NotFoundError, PermissionDeniedError, RuleViolationError
from recon.review.allocations import accept_suggestions, allocate, unallocate
from recon.review.ledger import lock_books, open_balances
from recon.tenants import TenantSettings, add_tenant
from tests.people import make_user

T = "acme"
FIN, AUD = "fin@acme.test", "aud@acme.test"
REF = transaction_ref("bank", "acc", "p1")
D = dt.date(2026, 10, 1)


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The application engine of a migrated database with tenants acme and globex, a finance
    user and an auditor on acme, and acme's books (see `_books`)."""
    if request.param == "sqlite":
        owner = engine = request.getfixturevalue("sqlite_engine")
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        engine = request.getfixturevalue("pg_app_engine")
    with admin_session(owner) as session:
        for tenant in (T, "globex"):
            add_tenant(session, tenant, tenant.title(), TenantSettings(), actor="test")
    make_user(engine, FIN, "finance", (T,))
    make_user(engine, AUD, "auditor", (T,))
    _books(engine)
    yield engine


def _invoice(
    invoice_id: str, balance: int, currency: str = "EUR", status: str = "Unpaid"
) -> Invoice:
    return Invoice(invoice_id=invoice_id, invoice_num=invoice_id, client_id="7",
                   client_name="Jane Doe", issued_on=D, due_on=D, total_minor=balance,
                   balance_minor=balance, currency=currency, status=status)  # fmt: skip


def _payment(source_id: str, amount: int, currency: str = "EUR") -> Transaction:
    return Transaction(source="bank", account_ref="acc", source_id=source_id, booked_on=D,
                       amount_minor=amount, currency=currency, counterparty="Jane Doe",
                       reference="")  # fmt: skip


def _books(engine: Engine) -> None:
    """Payment p1 of 100.00 EUR with an open unmatched exception; invoices 1001 (60.00 open),
    1002 (50.00), 1003 (USD), 1004 (cancelled); an outgoing payment out1."""
    with tenant_session(engine, T) as session:
        session.add_all([
            _payment("p1", 10000), _payment("out1", -2500), _payment("p2", 3000),
            _invoice("1001", 6000), _invoice("1002", 5000), _invoice("1003", 9000, "USD"),
            _invoice("1004", 4000, status="Cancelled"),
            ReconException(exception_key="e" * 64, kind="unmatched_payment", transaction_ref=REF,
                           amount_minor=10000, currency="EUR", detail="no invoice found",
                           updated_by="engine"),
        ])  # fmt: skip


def _rows(engine: Engine) -> list[Allocation]:
    with tenant_session(engine, T) as session:
        return list(session.scalars(select(Allocation).order_by(Allocation.id)))


def _audit(engine: Engine) -> list[tuple[str, str]]:
    with tenant_session(engine, T) as session:
        rows = session.execute(select(AuditEntry.actor, AuditEntry.action).order_by(AuditEntry.seq))
        return [(a, b) for a, b in rows if b != "tenant.added"]


def test_a_payment_allocated_to_two_invoices_resolves_its_exception(app: Engine) -> None:
    result = allocate(app, FIN, T, REF, [("1001", Decimal("60.00")), ("1002", 4000)], "phoned")
    assert [(a.invoice_id, a.amount, a.decision, a.origin, a.rule, a.confidence, a.created_by)
            for a in result.allocations] == [
        ("1001", "60.00", "manual", "manual", "manual", 100, FIN),
        ("1002", "40.00", "manual", "manual", "manual", 100, FIN),
    ]  # fmt: skip
    assert result.unallocated_minor == 0 and len(result.resolved_exception_ids) == 1
    assert all(r.note == "phoned" for r in _rows(app))
    with tenant_session(app, T) as session:
        problem = session.scalars(select(ReconException)).one()
        assert (problem.status, problem.resolution_kind, problem.updated_by, problem.version) == (
            "resolved", "matched", FIN, 2,
        )  # fmt: skip
        assert open_balances(session, list(session.scalars(select(Invoice)))) == {
            "1001": 0, "1002": 1000, "1003": 9000, "1004": 4000,
        }  # fmt: skip
    assert _audit(app) == [(FIN, "allocation.manual")] * 2 + [(FIN, "exception.resolved")]


def test_the_payment_found_by_its_own_id(app: Engine) -> None:
    assert allocate(app, FIN, T, "p2", [("1002", 3000)]).transaction_ref.endswith(":p2")
    with pytest.raises(NotFoundError, match="no payment 'nope'"):
        allocate(app, FIN, T, "nope", [("1002", 100)])


@pytest.mark.parametrize(
    ("ref", "parts", "sentence"),
    [
        (
            REF,
            [("1001", 6000), ("1002", 5000)],
            r"add up to 110\.00 EUR but payment bank:acc:p1 has only 100\.00 EUR unallocated",
        ),
        (REF, [("1001", Decimal("60.01"))], r"invoice 1001 has 60\.00 EUR open but 60\.01 EUR"),
        (REF, [("1003", 100)], "billed in USD but payment bank:acc:p1 is in EUR"),
        (REF, [("1004", 100)], "invoice 1004 is cancelled"),
        (REF, [("1001", -5)], r"must be positive, not -0\.05 EUR"),
        (REF, [("1001", Decimal("1.001"))], "more decimals than EUR allows"),
        (REF, [("1001", 100), ("1001", 100)], "named twice"),
        ("out1", [("1001", 100)], r"outgoing money \(-25\.00 EUR\)"),
    ],
)
def test_a_broken_rule_is_refused_with_the_numbers(
    app: Engine, ref: str, parts: list[tuple[str, int | Decimal]], sentence: str
) -> None:
    with pytest.raises(RuleViolationError, match=sentence):
        allocate(app, FIN, T, ref, parts)
    assert _rows(app) == [] and _audit(app) == []


def test_the_open_balance_counts_money_whmcs_does_not_show_yet(app: Engine) -> None:
    allocate(app, FIN, T, "p2", [("1001", 3000)])  # 30.00 of 1001's 60.00 now held
    with pytest.raises(RuleViolationError, match=r"invoice 1001 has 30\.00 EUR open"):
        allocate(app, FIN, T, REF, [("1001", 3001)])
    with tenant_session(app, T) as session:  # WHMCS records p2 (its balance not yet re-read)
        session.add(RecordedPayment(whmcs_txn_id="w9", invoice_id="1001", recorded_on=D,
                                    amount_minor=3000, currency="EUR", transid="p2"))  # fmt: skip
        invoice = session.scalars(select(Invoice).where(Invoice.invoice_id == "1001")).one()
        invoice.balance_minor = 3000
    allocate(app, FIN, T, REF, [("1001", 3000)])


def test_auditors_and_users_without_a_grant_are_refused(app: Engine) -> None:
    with pytest.raises(PermissionDeniedError, match="auditor and may not change"):
        allocate(app, AUD, T, REF, [("1001", 100)])
    with pytest.raises(PermissionDeniedError, match="no access to tenant 'globex'"):
        allocate(app, FIN, "globex", REF, [("1001", 100)])
    assert _rows(app) == []


def test_unallocate_appends_a_reversal_and_refuses_to_undo_twice(app: Engine) -> None:
    made = allocate(app, FIN, T, REF, [("1001", 6000)]).allocations[0]
    undone = unallocate(app, FIN, T, made.id, "wrong client")
    assert (undone.reversal.amount_minor, undone.reversal.reverses_id) == (-6000, made.id)
    assert undone.reversal.created_by == FIN and undone.reversal.note == "wrong client"
    assert undone.writeback_exception_id is None
    with pytest.raises(RuleViolationError, match=f"allocation {made.id} is already reversed"):
        unallocate(app, FIN, T, made.id)
    with pytest.raises(RuleViolationError, match="is itself a reversal"):
        unallocate(app, FIN, T, undone.reversal.id)
    with pytest.raises(NotFoundError):
        unallocate(app, FIN, T, 999_999)
    assert allocate(app, FIN, T, REF, [("1001", 6000)]).unallocated_minor == 4000
    assert [a for _, a in _audit(app)].count("allocation.reversed") == 1


def _suggest(engine: Engine, ref: str, invoice: str, amount: int, confidence: int) -> int:
    with tenant_session(engine, T) as session:
        row = Allocation(allocation_key=f"{ref}-{invoice}".ljust(64, "0")[:64],
                         transaction_ref=ref, invoice_id=invoice, amount_minor=amount,
                         currency="EUR", rule="name_amount", confidence=confidence,
                         decision="review")  # fmt: skip
        session.add(row)
        session.flush()
        return row.id


def test_accepting_suggestions_by_confidence_and_by_id(app: Engine) -> None:
    high = _suggest(app, REF, "1001", 6000, 95)
    low = _suggest(app, transaction_ref("bank", "acc", "p2"), "1002", 3000, 70)
    result = accept_suggestions(app, FIN, T, min_confidence=90)
    assert [a.suggestion_id for a in result.accepted] == [high] and result.refused == ()
    made = result.accepted[0].allocation
    assert (made.rule, made.decision, made.origin, made.created_by) == (
        "name_amount", "manual", "manual", FIN,
    )  # fmt: skip
    assert f"accepted suggestion {high}" in (made.note or "")
    again = accept_suggestions(app, FIN, T, allocation_ids=[high, low])
    assert [a.suggestion_id for a in again.accepted] == [low]
    assert [(r.allocation_id, r.reason) for r in again.refused] == [
        (high, f"allocation {high} is not a live suggestion")
    ]
    with tenant_session(app, T) as session:
        reversed_ids = set(session.scalars(select(Allocation.reverses_id)))
        assert {high, low} <= reversed_ids
        assert session.scalar(select(ReconException.status)) == "resolved"


def test_a_suggestion_that_now_breaks_a_rule_is_refused_not_accepted(app: Engine) -> None:
    stale = _suggest(app, REF, "1001", 6000, 95)
    allocate(app, FIN, T, "p2", [("1001", 3000)])  # the invoice has only 30.00 left
    result = accept_suggestions(app, FIN, T, allocation_ids=[stale])
    assert result.accepted == ()
    assert "invoice 1001 has 30.00 EUR open but 60.00 EUR" in result.refused[0].reason


def test_allocating_retires_the_engines_suggestions_for_the_payment(app: Engine) -> None:
    suggestion = _suggest(app, REF, "1002", 5000, 80)
    result = allocate(app, FIN, T, REF, [("1001", 6000)])
    assert result.superseded_suggestion_ids == (suggestion,)


# -- the CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def cli(app: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("RECON_DATABASE_URL", app.url.render_as_string(hide_password=False))
    return app


def test_cli_allocate_unallocate_and_accept(
    cli: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    from apps.cli.main import main

    args = ["allocate", "--tenant", T, "--transaction", REF, "--invoice", "1001=60.00",
            "--invoice", "1002=40", "--note", "split", "--as", FIN, "--json"]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(a["invoice_id"], a["amount"], a["amount_minor"]) for a in out["allocations"]] == [
        ("1001", "60.00", 6000), ("1002", "40.00", 4000),
    ]  # fmt: skip
    first = out["allocations"][0]["id"]
    assert main(["unallocate", "--tenant", T, "--allocation", str(first), "--as", FIN,
                 "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["reversal"]["amount_minor"] == -6000
    suggestion = _suggest(cli, transaction_ref("bank", "acc", "p2"), "1001", 3000, 88)
    assert main(["suggestions", "accept", "--tenant", T, "--id", str(suggestion),
                 "--as", FIN]) == 0  # fmt: skip
    assert "accepted 1 suggestion" in capsys.readouterr().out


def test_cli_refusals_exit_with_the_errors_code_and_one_sentence(
    cli: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.cli.main import main

    over = ["allocate", "--tenant", T, "--transaction", REF, "--invoice", "1001=70.00"]
    assert main([*over, "--as", FIN]) == 15
    err = capsys.readouterr().err
    assert "invoice 1001 has 60.00 EUR open but 70.00 EUR" in err and "Traceback" not in err
    monkeypatch.setenv("RECON_USER", AUD)
    assert main(over) == 13
    assert "auditor" in capsys.readouterr().err
    assert main(["allocate", "--tenant", T, "--transaction", REF, "--invoice", "1001"]) == 2
    assert main(["suggestions", "accept", "--tenant", T, "--as", FIN]) == 2
    with tenant_session(cli, T) as session:
        assert session.scalar(select(func.count()).select_from(Allocation)) == 0


def _waiting_for_an_advisory_lock(engine: Engine) -> bool:
    """Poll (bounded) until some backend waits for an advisory lock."""
    for _ in range(3000):
        with engine.connect() as conn:
            waiting = conn.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            ).scalar()
        if waiting:
            return True
        time.sleep(0.01)
    return False


def test_two_people_placing_the_same_money_wait_for_each_other(app: Engine) -> None:
    refused: list[str] = []

    def second_person() -> None:
        try:
            allocate(app, FIN, T, REF, [("1002", 5000)])
        except RuleViolationError as exc:
            refused.append(str(exc))

    with tenant_session(app, T) as session:  # a first write of p1's money, not committed yet
        lock_books(session, T)
        session.add(Allocation(allocation_key="f" * 64, transaction_ref=REF, invoice_id="1001",
                               amount_minor=6000, currency="EUR", rule="manual", confidence=100,
                               decision="manual", origin="manual", created_by=FIN))  # fmt: skip
        session.flush()
        thread = threading.Thread(target=second_person)
        thread.start()
        if app.dialect.name == "postgresql":  # it waits for the first write, not reads past it
            assert _waiting_for_an_advisory_lock(app)
    thread.join()
    assert refused == [
        "the parts add up to 50.00 EUR but payment bank:acc:p1 has only 40.00 EUR unallocated "
        "(of 100.00 EUR)"
    ]
