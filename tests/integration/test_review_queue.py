"""The work queue and one exception's detail, read through the service layer on SQLite and on
PostgreSQL (the application role, under row-level security): filters, keyset pages in every
sort, the overview's counts and sums, the detail's payment, landed record, candidates,
runners-up, open invoices, comments and history; and a user without a grant sees nothing."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from recon import audit
from recon.db.models import (
    Allocation,
    ExceptionComment,
    Invoice,
    RawFetch,
    RawPayload,
    ReconException,
    Transaction,
)
from recon.db.tenancy import admin_session, tenant_session
from recon.errors import PermissionDeniedError, RuleViolationError
from recon.review.access import Role
from recon.review.exceptions import exception_detail
from recon.review.queue import (
    fill_search_text,
    list_exceptions,
    parse_amount_bound,
    queue_overview,
)
from recon.review.views import QueueCursor, QueueFilter, QueueSort, to_jsonable
from recon.tenants import TenantSettings, add_tenant
from tests.people import make_user

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
FIN, AUD, OUT = "fin@acme.test", "aud@acme.test", "out@globex.test"


@dataclass(frozen=True)
class Books:
    """Engines and the ids of the seeded exceptions (by a short name)."""

    owner: Engine
    app: Engine
    ids: dict[str, int]


@pytest.fixture(params=["sqlite", "postgresql"])
def books(request: pytest.FixtureRequest) -> Iterator[Books]:
    """Tenants acme and globex with users, payments, invoices, allocations and exceptions."""
    if request.param == "sqlite":
        engine = request.getfixturevalue("sqlite_engine")
        owner, app = engine, engine
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
    with admin_session(owner) as session:
        for tenant in ("acme", "globex"):
            add_tenant(session, tenant, tenant.title(), TenantSettings(), actor="test")
    make_user(app, FIN, Role.FINANCE, ("acme",))
    make_user(app, AUD, Role.AUDITOR, ("acme",))
    make_user(app, OUT, Role.FINANCE, ("globex",))
    yield Books(owner, app, seed(app))


def _txn(source: str, account: str, source_id: str, minor: int, ccy: str, payer: str, ref: str,
         raw: int | None = None) -> Transaction:  # fmt: skip
    return Transaction(
        source=source, account_ref=account, source_id=source_id, booked_on=dt.date(2026, 11, 1),
        amount_minor=minor, currency=ccy, counterparty=payer, reference=ref, raw_payload_id=raw,
    )  # fmt: skip


def _exc(name: str, kind: str, ref: str | None, minor: int, ccy: str, days: int, **more: object
         ) -> ReconException:  # fmt: skip
    return ReconException(
        exception_key=f"{name:0<64}"[:64], kind=kind, transaction_ref=ref, amount_minor=minor,
        currency=ccy, created_at=NOW - dt.timedelta(days=days, hours=1),
        detail=str(more.pop("detail", f"{kind} {name}")), **more,
    )  # fmt: skip


def _landed_page(session: object) -> int:
    """A GoCardless-shaped page holding payment b1 (and a token that must not come out)."""
    body = {
        "transactions": {
            "booked": [
                {"transactionId": "b0", "transactionAmount": {"amount": "1.00"}},
                {
                    "transactionId": "b1",
                    "transactionAmount": {"amount": "100.00", "currency": "EUR"},
                    "debtorName": "Jane Doe",
                    "remittanceInformationUnstructured": "Invoice 5001",
                    "access_token": "tok-should-not-show",
                },
            ]
        }
    }
    fetch = RawFetch(provider="gocardless", account_ref="acc1", dataset="transactions",
                     window_from=dt.date(2026, 11, 1), window_to=dt.date(2026, 11, 30))  # fmt: skip
    session.add(fetch)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    page = RawPayload(
        fetch_id=fetch.id, page=1, provider="gocardless", account_ref="acc1",
        endpoint="transactions", request_key="k", status_code=200, content_sha256="0" * 64,
        body=json.dumps(body).encode(),
    )  # fmt: skip
    session.add(page)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    return page.id


def seed(app: Engine) -> dict[str, int]:
    """Acme's books: five exceptions of several kinds, ages, currencies, sources and states."""
    with tenant_session(app, "acme") as s:
        raw = _landed_page(s)
        s.add_all([
            _txn("bank", "acc1", "b1", 10000, "EUR", "Jane Doe", "Invoice 5001", raw),
            _txn("stripe", "acct", "txn_2", 5000, "EUR", "ACME Hosting Ltd", "ch_2"),
            _txn("bank", "acc1", "b3", 200000, "GBP", "Widgets plc", "payment march"),
            _txn("gocardless", "cred", "PM4", 3500, "EUR", "Jane Doe", "INV-5002"),
        ])  # fmt: skip
        for inv, client, name, balance, status in (
            ("5001", "7", "Jane Doe", 10000, "Unpaid"),
            ("5002", "8", "ACME Hosting", 5000, "Unpaid"),
            ("5003", "8", "ACME Hosting", 5000, "Unpaid"),
            ("5004", "8", "ACME Hosting", 0, "Paid"),
        ):
            s.add(Invoice(invoice_id=inv, client_id=client, client_name=name,
                          issued_on=dt.date(2026, 10, int(inv[-1])), total_minor=balance or 900,
                          balance_minor=balance, currency="EUR", status=status))  # fmt: skip
        rows = {
            "e1": _exc("e1", "unmatched_payment", "bank:acc1:b1", 10000, "EUR", 2),
            "e2": _exc("e2", "ambiguous", "stripe:acct:txn_2", 5000, "EUR", 10,
                       invoice_id="5003", assignee=FIN, rule="name_amount", confidence=80,
                       detail="another candidate: invoice 5003, confidence 80 (name_amount)"),
            "e3": _exc("e3", "overpayment", "bank:acc1:b3", 200000, "GBP", 40),
            "e4": _exc("e4", "unmatched_payment", "gocardless:cred:PM4", 3500, "EUR", 100,
                       status="resolved", resolution_kind="other", resolved_by=FIN),
            "e5": _exc("e5", "unbacked_payment", None, 1200, "EUR", 5, invoice_id="5009",
                       subject_ref="w9"),
        }  # fmt: skip
        s.flush()
        fill_search_text(s, rows.values())  # as whoever opens an exception does
        s.add_all(rows.values())
        kept = Allocation(allocation_key="a" * 64, transaction_ref="stripe:acct:txn_2",
                          invoice_id="5002", amount_minor=5000, currency="EUR",
                          rule="reference_typo", confidence=85, decision="review")  # fmt: skip
        undone = Allocation(allocation_key="b" * 64, transaction_ref="stripe:acct:txn_2",
                            invoice_id="5004", amount_minor=5000, currency="EUR",
                            rule="name_amount", confidence=60, decision="review")  # fmt: skip
        s.add_all([kept, undone])
        s.flush()
        s.add(Allocation(allocation_key="c" * 64, transaction_ref="stripe:acct:txn_2",
                         invoice_id="5004", amount_minor=-5000, currency="EUR",
                         rule="name_amount", confidence=60, decision="review",
                         reverses_id=undone.id))  # fmt: skip
        s.add(ExceptionComment(exception_id=rows["e2"].id, author=FIN, body="asked the client"))
        audit.append(
            s,
            actor=FIN,
            action="exception.assigned",
            entity="exception",
            entity_id=rows["e2"].exception_key,
            details={"exception_id": rows["e2"].id},
        )
        audit.append(s, actor="engine", action="allocation.reversed", entity="allocation",
                     entity_id="c" * 64, details={})  # fmt: skip
        ids = {name: row.id for name, row in rows.items()}
    with tenant_session(app, "globex") as s:
        s.add(_txn("bank", "g", "g1", 777, "EUR", "Jane Doe", "Invoice 5001"))
        s.flush()
        fill_search_text(s, [globex := _exc("g1", "unmatched_payment", "bank:g:g1", 777, "EUR", 3)])
        s.add(globex)
    return ids


def _ids(books: Books, filters: QueueFilter, **kw: object) -> list[str]:
    page = list_exceptions(books.app, FIN, "acme", filters, now=NOW, **kw)  # type: ignore[arg-type]
    names = {v: k for k, v in books.ids.items()}
    return [names[item.id] for item in page.items]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (QueueFilter(), ["e3", "e2", "e5", "e1"]),
        (QueueFilter(status=None), ["e4", "e3", "e2", "e5", "e1"]),
        (QueueFilter(status="resolved"), ["e4"]),
        (QueueFilter(kind="unmatched_payment", status=None), ["e4", "e1"]),
        (QueueFilter(assignee="FIN@acme.test"), ["e2"]),
        (QueueFilter(assignee="none"), ["e3", "e5", "e1"]),
        (QueueFilter(source="bank"), ["e3", "e1"]),
        (QueueFilter(source="gocardless", status=None), ["e4"]),
        (QueueFilter(currency="gbp"), ["e3"]),
        (QueueFilter(min_minor=5000, max_minor=10000), ["e2", "e1"]),
        (QueueFilter(older_than_days=7), ["e3", "e2"]),
        (QueueFilter(older_than_days=30, status=None), ["e4", "e3"]),
        (QueueFilter(search="jane", status=None), ["e4", "e1"]),
        (QueueFilter(search="ch_2"), ["e2"]),
        (QueueFilter(search="MARCH"), ["e3"]),
        (QueueFilter(search="100%"), []),
    ],
)
def test_each_filter_narrows_the_queue(
    books: Books, filters: QueueFilter, expected: list[str]
) -> None:
    assert _ids(books, filters) == expected


def test_keyset_pages_walk_every_sort_once(books: Books) -> None:
    everything = QueueFilter(status=None)
    for sort in QueueSort:
        whole = _ids(books, everything, sort=sort, limit=50)
        walked: list[str] = []
        after: QueueCursor | None = None
        while True:
            page = list_exceptions(books.app, FIN, "acme", everything, sort=sort, after=after,
                                   limit=2, now=NOW)  # fmt: skip
            names = {v: k for k, v in books.ids.items()}
            walked += [names[i.id] for i in page.items]
            if page.next is None:
                break
            after = QueueCursor.decode(page.next.encode())
        assert walked == whole, sort
    assert _ids(books, everything, sort=QueueSort.AMOUNT) == ["e3", "e1", "e2", "e4", "e5"]
    by_kind = _ids(books, everything, sort=QueueSort.KIND)
    assert by_kind[:3] == ["e2", "e3", "e5"]
    with pytest.raises(RuleViolationError, match="sorted by age"):
        cursor = QueueCursor(QueueSort.AGE, NOW.isoformat(), 1)
        list_exceptions(books.app, FIN, "acme", everything, sort=QueueSort.KIND, after=cursor)
    with pytest.raises(RuleViolationError, match="not a queue cursor"):
        QueueCursor.decode("!!")


def test_list_items_carry_what_scripts_need(books: Books) -> None:
    page = list_exceptions(books.app, FIN, "acme", QueueFilter(kind="ambiguous"), now=NOW)
    item = to_jsonable(page.items[0])
    assert {k: item[k] for k in ("kind", "status", "amount", "currency", "assignee", "version")} == {
        "kind": "ambiguous", "status": "open", "amount": "50.00", "currency": "EUR",
        "assignee": FIN, "version": 1,
    }  # fmt: skip
    assert (item["source"], item["payer"], item["reference"], item["age_days"]) == (
        "stripe", "ACME Hosting Ltd", "ch_2", 10,
    )  # fmt: skip


def test_amount_bounds_parse_decimal_strings() -> None:
    assert parse_amount_bound("12.50", None) == 1250
    assert parse_amount_bound("1000", "JPY") == 1000
    with pytest.raises(RuleViolationError, match="not an amount"):
        parse_amount_bound("12.505", None)
    with pytest.raises(RuleViolationError, match="not an amount"):
        parse_amount_bound("ten", "EUR")


def test_overview_counts_and_sums_by_status_kind_and_age(books: Books) -> None:
    overview = queue_overview(books.app, AUD, "acme", now=NOW)
    by_status = {t.key: (t.count, t.sums) for t in overview.totals("status")}
    assert by_status == {
        "open": (4, (("EUR", "162.00"), ("GBP", "2000.00"))),
        "resolved": (1, (("EUR", "35.00"),)),
    }
    ages = [(t.key, t.count) for t in overview.totals("age_bucket")]
    assert ages == [("0-7", 2), ("8-30", 1), ("31-90", 1), (">90", 1)]
    kinds = {t.key: t.count for t in overview.totals("kind", status="open")}
    assert kinds == {"ambiguous": 1, "overpayment": 1, "unbacked_payment": 1,
                     "unmatched_payment": 1}  # fmt: skip


def test_a_user_without_a_grant_sees_nothing_of_the_tenant(books: Books) -> None:
    for call in (
        lambda: list_exceptions(books.app, OUT, "acme", QueueFilter(status=None)),
        lambda: queue_overview(books.app, OUT, "acme"),
        lambda: exception_detail(books.app, OUT, "acme", books.ids["e1"]),
    ):
        with pytest.raises(PermissionDeniedError, match="no access to tenant 'acme'"):
            call()
    theirs = list_exceptions(books.app, OUT, "globex", QueueFilter(search="jane"), now=NOW)
    assert [i.transaction_ref for i in theirs.items] == ["bank:g:g1"]
    overview = queue_overview(books.app, OUT, "globex", now=NOW)
    assert [(t.key, t.count) for t in overview.totals("status")] == [("open", 1)]


def test_detail_shows_payment_record_candidates_invoices_comments_history(books: Books) -> None:
    detail = exception_detail(books.app, AUD, "acme", books.ids["e2"])
    assert detail.exception.kind == "ambiguous"
    assert [(c.invoice_id, c.rule, c.confidence, c.decision) for c in detail.candidates] == [
        ("5002", "reference_typo", 85, "review")
    ]  # the reversed allocation to 5004 is not a candidate
    assert [(r.invoice_id, r.confidence, r.rule) for r in detail.runners_up] == [
        ("5003", 80, "name_amount")
    ]  # from the row's columns, as the engine's store writes them (0014)
    assert detail.payer_match == "client"
    assert [i.invoice_id for i in detail.open_invoices] == ["5002", "5003"]
    assert [(c.author, c.body) for c in detail.comments] == [(FIN, "asked the client")]
    assert [(h.actor, h.action) for h in detail.history] == [
        (FIN, "exception.assigned"),
        ("engine", "allocation.reversed"),
    ]
    first = exception_detail(books.app, FIN, "acme", books.ids["e1"])
    assert first.payment is not None and first.payment.amount == "100.00"
    record = first.payment.raw_record
    assert record is not None and record["remittanceInformationUnstructured"] == "Invoice 5001"
    assert record["access_token"] == "***"
    assert "tok-should-not-show" not in json.dumps(to_jsonable(first))
    assert first.payer_match == "name" and [i.invoice_id for i in first.open_invoices] == ["5001"]
    lonely = exception_detail(books.app, FIN, "acme", books.ids["e5"])
    assert lonely.payment is None and lonely.candidates == () and lonely.payer_match == "none"
