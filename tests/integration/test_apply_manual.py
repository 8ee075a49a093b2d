"""People's allocations written back to the sandbox WHMCS with the same exactly-once ledger as the
engine's; a reversal of one WHMCS already holds opens an exception instead of pretending the
payment is gone (SQLite and the PostgreSQL app role)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from connectors.sandbox.whmcs import WhmcsState
from connectors.whmcs import WhmcsClient
from recon.canonical import transaction_ref
from recon.db.models import Allocation, AppliedPayment, Invoice, ReconException, Transaction
from recon.db.tenancy import tenant_session
from recon.money import format_amount, to_minor
from recon.review.allocations import accept_suggestions, allocate, unallocate
from recon.tenants import TenantSettings
from tasks.apply import apply_payments
from tasks.reconcile import reconcile_window
from tests.people import backend_with_finance

T, FIN = "acme", "fin@acme.test"
BOOKED = dt.date(2025, 3, 20)


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest) -> Iterator[Engine]:
    engine = backend_with_finance(request, T, FIN, settings=TenantSettings(auto_apply=True))
    yield engine


def _open_invoices(state: WhmcsState, currency: str = "EUR") -> list[tuple[int, int]]:
    """The seed's Unpaid invoices in `currency` with their open balance (minor units)."""
    tables = state.tables()
    clients = {c["id"]: c for c in tables["tblclients"]}
    codes = {c["id"]: c["code"] for c in tables["tblcurrencies"]}
    found = []
    for invoice in tables["tblinvoices"]:
        if (
            invoice["status"] == "Unpaid"
            and codes[clients[invoice["userid"]]["currency"]] == currency
        ):
            balance = to_minor(state.balance(int(invoice["id"])), currency)
            if balance > 0:
                found.append((int(invoice["id"]), balance))
    return found


def _books(engine: Engine, invoices: list[tuple[int, int]], payments: dict[str, int]) -> None:
    """Our copy of WHMCS's invoices and the bank payments (source id -> amount)."""
    with tenant_session(engine, T) as session:
        for invoice_id, balance in invoices:
            session.add(Invoice(invoice_id=str(invoice_id), client_id="1", issued_on=BOOKED,
                                total_minor=balance, balance_minor=balance, currency="EUR",
                                status="Unpaid"))  # fmt: skip
        for source_id, amount in payments.items():
            session.add(Transaction(source="bank", account_ref="acc-1", source_id=source_id,
                                    booked_on=BOOKED, amount_minor=amount, currency="EUR",
                                    counterparty="Someone", reference="paid"))  # fmt: skip


def _ref(source_id: str) -> str:
    return transaction_ref("bank", "acc-1", source_id)


def test_a_manual_allocation_is_written_back_exactly_once(
    app: Engine, whmcs_state: WhmcsState, whmcs_client: WhmcsClient
) -> None:
    (invoice_id, balance), *_ = _open_invoices(whmcs_state)
    _books(app, [(invoice_id, balance)], {"bank-m1": balance})
    allocate(app, FIN, T, _ref("bank-m1"), [(str(invoice_id), balance)])
    first = apply_payments(app, T, whmcs_client, actor=FIN)
    assert (first.applied, first.already_in_whmcs, first.failed) == (1, 0, [])
    assert len(whmcs_state.payments(invoice_id, "bank-m1")) == 1
    assert whmcs_state.status(invoice_id) == "Paid"
    second = apply_payments(app, T, whmcs_client, actor=FIN)
    assert second.planned == [] and len(whmcs_state.payments(invoice_id, "bank-m1")) == 1
    with tenant_session(app, T) as session:
        row = session.scalars(select(AppliedPayment)).one()
        manual = session.scalars(select(Allocation)).one()
        assert (row.state, row.allocation_id) == ("applied", manual.id)


def test_a_manual_allocation_whmcs_already_has_is_found_not_added(
    app: Engine, whmcs_state: WhmcsState, whmcs_client: WhmcsClient
) -> None:
    (invoice_id, balance), *_ = _open_invoices(whmcs_state)
    _books(app, [(invoice_id, balance)], {"bank-m2": balance})
    # Someone recorded the payment by hand in WHMCS, without a transid.
    whmcs_client.call(
        "AddInvoicePayment",
        {
            "invoiceid": invoice_id,
            "transid": "",
            "gateway": "banktransfer",
            "date": f"{BOOKED.isoformat()} 00:00:00",
            "amount": format_amount(balance, "EUR"),
        },
        idempotent=False,
        record=False,
    )
    allocate(app, FIN, T, _ref("bank-m2"), [(str(invoice_id), balance)])
    report = apply_payments(app, T, whmcs_client, actor=FIN)
    assert (report.applied, report.already_in_whmcs) == (0, 1)
    assert whmcs_state.payments(invoice_id, "bank-m2") == []


def test_an_accepted_suggestion_is_written_back_but_a_confirmation_is_not(
    app: Engine, whmcs_state: WhmcsState, whmcs_client: WhmcsClient
) -> None:
    (first, a), (second, b), *_ = _open_invoices(whmcs_state)
    _books(app, [(first, a), (second, b)], {"bank-s1": a, "bank-s2": b})
    with tenant_session(app, T) as session:
        for n, (source_id, invoice_id, amount, rule) in enumerate(
            [("bank-s1", first, a, "name_amount"), ("bank-s2", second, b, "recorded_payer")]
        ):
            session.add(Allocation(allocation_key=f"{n}".ljust(64, "s"),
                                   transaction_ref=_ref(source_id), invoice_id=str(invoice_id),
                                   amount_minor=amount, currency="EUR", rule=rule, confidence=80,
                                   decision="review"))  # fmt: skip
    accepted = accept_suggestions(app, FIN, T, min_confidence=50)
    assert len(accepted.accepted) == 2
    report = apply_payments(app, T, whmcs_client, actor=FIN)
    assert [(p.invoice_id, p.transid) for p in report.planned] == [(str(first), "bank-s1")]
    assert len(whmcs_state.payments(first, "bank-s1")) == 1
    assert whmcs_state.payments(second, "bank-s2") == []


def test_reversing_what_whmcs_holds_opens_an_exception_the_engine_keeps(
    app: Engine, whmcs_state: WhmcsState, whmcs_client: WhmcsClient
) -> None:
    (invoice_id, balance), *_ = _open_invoices(whmcs_state)
    _books(app, [(invoice_id, balance)], {"bank-m3": balance})
    made = allocate(app, FIN, T, _ref("bank-m3"), [(str(invoice_id), balance)]).allocations[0]
    apply_payments(app, T, whmcs_client, actor=FIN)
    undone = unallocate(app, FIN, T, made.id, "wrong invoice")
    assert undone.writeback_exception_id is not None
    assert len(whmcs_state.payments(invoice_id, "bank-m3")) == 1  # nothing pretends it is gone
    reconcile_window(app, T, (BOOKED, BOOKED), run_id="r1")
    with tenant_session(app, T) as session:
        problem = session.get(ReconException, undone.writeback_exception_id)
        assert problem is not None
        assert (problem.kind, problem.status, problem.updated_by) == (
            "reversed_after_writeback", "open", FIN,
        )  # fmt: skip
        assert (problem.payer, problem.reference) == ("Someone", "paid")  # the queue searches them
        assert problem.detail == (
            f"recorded in WHMCS, reversed here: remove payment bank-m3 from invoice "
            f"{invoice_id} in WHMCS"
        )
    again = apply_payments(app, T, whmcs_client, actor=FIN)
    assert again.planned == []  # the reversal is never sent to WHMCS as a negative payment
    # Unallocating a row that was never written back opens nothing.
    _books(app, [], {"bank-m4": 100})
    with tenant_session(app, T) as session:
        session.add(Invoice(invoice_id="999999", client_id="1", issued_on=BOOKED,
                            total_minor=100, balance_minor=100, currency="EUR",
                            status="Unpaid"))  # fmt: skip
    other = allocate(app, FIN, T, _ref("bank-m4"), [("999999", 100)]).allocations[0]
    assert unallocate(app, FIN, T, other.id).writeback_exception_id is None
