"""WHMCS write-back against the sandbox: applied once, never twice, even across a crash."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, select

from connectors.sandbox.whmcs import WhmcsState
from connectors.whmcs import RecordedPayment, WhmcsClient
from recon.audit import verify_chain
from recon.canonical import transaction_ref
from recon.db.models import (
    Allocation,
    AppliedPayment,
    AuditEntry,
    ReconException,
    Tenant,
    Transaction,
)
from recon.db.tenancy import admin_session, tenant_session
from recon.money import format_amount, to_minor
from recon.tenants import TenantSettings, add_tenant
from tasks.apply import apply_payments

TENANT = "acme"


def _open_invoice(state: WhmcsState, currency: str = "EUR") -> tuple[int, int]:
    """An Unpaid invoice of the seed with its open balance in minor units."""
    tables = state.tables()
    clients = {c["id"]: c for c in tables["tblclients"]}
    currencies = {c["id"]: c["code"] for c in tables["tblcurrencies"]}
    for invoice in tables["tblinvoices"]:
        client = clients[invoice["userid"]]
        if invoice["status"] == "Unpaid" and currencies.get(client["currency"]) == currency:
            balance = to_minor(state.balance(int(invoice["id"])), currency)
            if balance > 0:
                return int(invoice["id"]), balance
    raise AssertionError("the seed has no open invoice in that currency")


@pytest.fixture(params=["sqlite", "postgresql"])
def engines(request: pytest.FixtureRequest) -> tuple[Engine, Engine]:
    """(application engine, schema owner engine) of a migrated database holding the tenant."""
    if request.param == "sqlite":
        app: Engine = request.getfixturevalue("sqlite_engine")
        owner = app
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
    with admin_session(owner) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(auto_apply=True), actor="test")
    return app, owner


@pytest.fixture
def engine(engines: tuple[Engine, Engine]) -> Engine:
    return engines[0]


BOOKED = dt.date(2025, 3, 20)


def _allocate(engine: Engine, invoice_id: int, amount: int, *, source_id: str = "bank-tx-1",
              decision: str = "auto", currency: str = "EUR",
              rule: str = "ref_amount_payer") -> None:  # fmt: skip
    ref = transaction_ref("bank", "acc-1", source_id)
    with tenant_session(engine, TENANT) as session:
        session.add(
            Transaction(
                tenant_id=TENANT, source="bank", account_ref="acc-1", source_id=source_id,
                booked_on=BOOKED, amount_minor=amount, currency=currency,
                reference=f"INV {invoice_id}",
            )
        )  # fmt: skip
        session.add(
            Allocation(
                tenant_id=TENANT, allocation_key=f"k-{source_id}-{invoice_id}", transaction_ref=ref,
                invoice_id=str(invoice_id), amount_minor=amount, currency=currency,
                rule=rule, confidence=99, decision=decision,
            )
        )  # fmt: skip


def _record_in_whmcs(client: WhmcsClient, invoice_id: int, amount: int, *, transid: str = "",
                     on: dt.date = BOOKED, currency: str = "EUR") -> None:  # fmt: skip
    """A payment recorded in WHMCS by someone else: by hand (no transid) or a gateway module."""
    client.call(
        "AddInvoicePayment",
        {"invoiceid": invoice_id, "transid": transid, "gateway": "banktransfer",
         "date": f"{on.isoformat()} 00:00:00", "amount": format_amount(amount, currency)},
        idempotent=False,
        record=False,
    )  # fmt: skip


def test_dry_run_lists_without_writing(
    engine: Engine, whmcs_state: WhmcsState, whmcs_client: WhmcsClient
) -> None:
    invoice_id, balance = _open_invoice(whmcs_state)
    _allocate(engine, invoice_id, balance)
    _allocate(engine, invoice_id, 100, source_id="bank-tx-2", decision="review")
    report = apply_payments(engine, TENANT, whmcs_client, dry_run=True)
    assert [(p.invoice_id, p.transid, p.amount_minor) for p in report.planned] == [
        (str(invoice_id), "bank-tx-1", balance)
    ]
    assert whmcs_state.payments(invoice_id, "bank-tx-1") == []


def test_applied_once_and_never_twice(
    engine: Engine, whmcs_state: WhmcsState, whmcs_client: WhmcsClient
) -> None:
    invoice_id, balance = _open_invoice(whmcs_state)
    _allocate(engine, invoice_id, balance)
    first = apply_payments(engine, TENANT, whmcs_client, actor="test")
    assert (first.applied, first.already_in_whmcs) == (1, 0)
    assert len(whmcs_state.payments(invoice_id, "bank-tx-1")) == 1
    assert whmcs_state.status(invoice_id) == "Paid"
    second = apply_payments(engine, TENANT, whmcs_client, actor="test")
    assert second.planned == [] and len(whmcs_state.payments(invoice_id, "bank-tx-1")) == 1
    with tenant_session(engine, TENANT) as session:
        applied = session.scalars(select(AppliedPayment)).one()
        assert applied.state == "applied" and applied.response["created"] is True
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
        assert actions == ["tenant.added", "payment.applied"]
        assert verify_chain(session, TENANT).ok


class CrashAfterCall:
    """Calls WHMCS, then dies before the result is committed (a SIGKILL at the worst moment)."""

    def __init__(self, client: WhmcsClient) -> None:
        self.client = client

    def add_invoice_payment(self, *args: Any, **kwargs: Any) -> RecordedPayment:
        self.client.add_invoice_payment(*args, **kwargs)
        raise SystemExit("killed between the WHMCS call and the commit")


def test_a_crash_between_call_and_commit_is_finished_not_repeated(
    engine: Engine, whmcs_state: WhmcsState, whmcs_client: WhmcsClient
) -> None:
    invoice_id, balance = _open_invoice(whmcs_state)
    _allocate(engine, invoice_id, balance)
    with pytest.raises(SystemExit):
        apply_payments(engine, TENANT, CrashAfterCall(whmcs_client))
    with tenant_session(engine, TENANT) as session:
        assert session.scalars(select(AppliedPayment.state)).all() == ["pending"]
    report = apply_payments(engine, TENANT, whmcs_client)
    assert (report.applied, report.already_in_whmcs) == (0, 1)
    assert len(whmcs_state.payments(invoice_id, "bank-tx-1")) == 1
    with tenant_session(engine, TENANT) as session:
        assert session.scalars(select(AppliedPayment.state)).all() == ["applied"]


def test_a_refused_payment_becomes_an_exception_for_a_person(
    engine: Engine, whmcs_state: WhmcsState, whmcs_client: WhmcsClient
) -> None:
    invoice_id, balance = _open_invoice(whmcs_state, currency="USD")
    _allocate(engine, invoice_id, balance, currency="EUR")  # WHMCS bills it in USD
    report = apply_payments(engine, TENANT, whmcs_client)
    assert report.applied == 0 and len(report.failed) == 1
    assert whmcs_state.payments(invoice_id, "bank-tx-1") == []
    with tenant_session(engine, TENANT) as session:
        problem = session.scalars(select(ReconException)).one()
        assert problem.kind == "apply_failed" and "USD" in problem.detail
    again = apply_payments(engine, TENANT, whmcs_client)
    assert again.applied == 0 and again.failed == []  # waits for a person, not retried blindly


def test_apply_command_dry_run_then_apply(
    engines: tuple[Engine, Engine],
    whmcs_state: WhmcsState,
    whmcs_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from apps.cli.main import main
    from tests.integration.whmcs_fixtures import API_SECRET, IDENTIFIER

    engine, owner = engines
    invoice_id, balance = _open_invoice(whmcs_state)
    _allocate(engine, invoice_id, balance)
    with admin_session(owner) as session:
        tenant = session.get(Tenant, TENANT)
        assert tenant is not None
        tenant.settings = {**tenant.settings, "whmcs": {"base_url": whmcs_server.url}}
    monkeypatch.setenv("RECON_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("RECON_SECRET_ACME__WHMCS_API_IDENTIFIER", IDENTIFIER)
    monkeypatch.setenv("RECON_SECRET_ACME__WHMCS_API_SECRET", API_SECRET)
    assert main(["apply", "--tenant", TENANT, "--dry-run"]) == 0
    assert str(invoice_id) in capsys.readouterr().out
    assert whmcs_state.payments(invoice_id, "bank-tx-1") == []
    assert main(["apply", "--tenant", TENANT]) == 0
    assert "applied 1" in capsys.readouterr().out
    assert len(whmcs_state.payments(invoice_id, "bank-tx-1")) == 1


def _applied_row(engine: Engine) -> AppliedPayment:
    with tenant_session(engine, TENANT) as session:
        return session.scalars(select(AppliedPayment)).one()


def _payment_actions(engine: Engine) -> list[str]:
    with tenant_session(engine, TENANT) as session:
        return list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.action.like("payment.%"))
                .order_by(AuditEntry.seq)
            )
        )


def test_a_payment_entered_by_hand_without_transid_is_found_not_added(
    engine: Engine, whmcs_state: WhmcsState, whmcs_client: WhmcsClient
) -> None:
    invoice_id, balance = _open_invoice(whmcs_state)
    _allocate(engine, invoice_id, balance)
    _record_in_whmcs(whmcs_client, invoice_id, balance)
    before = whmcs_state.payments(invoice_id)
    report = apply_payments(engine, TENANT, whmcs_client, actor="test")
    assert (report.applied, report.already_in_whmcs, report.failed) == (0, 1, [])
    assert whmcs_state.payments(invoice_id) == before
    row = _applied_row(engine)
    hand = [p for p in before if p["transid"] == ""]
    assert row.state == "applied" and row.response["created"] is False
    assert row.response["whmcs_txn_id"] == int(hand[-1]["id"])
    assert _payment_actions(engine) == ["payment.found_in_whmcs"]
    again = apply_payments(engine, TENANT, whmcs_client, actor="test")
    assert again.planned == [] and whmcs_state.payments(invoice_id) == before


def test_a_payment_a_gateway_recorded_under_its_own_id_is_found_not_added(
    engine: Engine, whmcs_state: WhmcsState, whmcs_client: WhmcsClient
) -> None:
    invoice_id, balance = _open_invoice(whmcs_state)
    _allocate(engine, invoice_id, balance)
    _record_in_whmcs(whmcs_client, invoice_id, balance, transid="gateway-ref-77")
    before = whmcs_state.payments(invoice_id)
    report = apply_payments(engine, TENANT, whmcs_client, actor="test")
    assert (report.applied, report.already_in_whmcs, report.failed) == (0, 1, [])
    assert whmcs_state.payments(invoice_id) == before
    assert whmcs_state.balance(invoice_id) == 0
    assert _payment_actions(engine) == ["payment.found_in_whmcs"]


def test_an_older_payment_of_the_same_amount_is_not_taken_for_this_one(
    engine: Engine, whmcs_state: WhmcsState, whmcs_client: WhmcsClient
) -> None:
    invoice_id, balance = _open_invoice(whmcs_state)
    half = balance // 2  # paid in two instalments: the first entered by hand weeks ago
    _record_in_whmcs(whmcs_client, invoice_id, half, on=BOOKED - dt.timedelta(days=40))
    _allocate(engine, invoice_id, half)
    report = apply_payments(engine, TENANT, whmcs_client, actor="test")
    assert (report.applied, report.already_in_whmcs) == (1, 0)
    assert len(whmcs_state.payments(invoice_id, "bank-tx-1")) == 1


def test_a_payment_whmcs_records_for_a_confirmed_one_is_not_taken_for_another(
    engine: Engine, whmcs_state: WhmcsState, whmcs_client: WhmcsClient
) -> None:
    invoice_id, balance = _open_invoice(whmcs_state)
    half = balance // 2
    # bank-tx-1 was entered by hand and the engine confirmed it; bank-tx-2 is new money.
    _record_in_whmcs(whmcs_client, invoice_id, half, on=BOOKED)
    _allocate(engine, invoice_id, half, rule="recorded_reference")
    _allocate(engine, invoice_id, half, source_id="bank-tx-2")
    report = apply_payments(engine, TENANT, whmcs_client, actor="test")
    assert [p.transid for p in report.planned] == ["bank-tx-2"]
    assert (report.applied, report.already_in_whmcs) == (1, 0)
    assert len(whmcs_state.payments(invoice_id, "bank-tx-2")) == 1
    assert whmcs_state.payments(invoice_id, "bank-tx-1") == []


def test_more_than_the_invoice_has_open_is_refused_for_a_person(
    engine: Engine, whmcs_state: WhmcsState, whmcs_client: WhmcsClient
) -> None:
    invoice_id, balance = _open_invoice(whmcs_state)
    _record_in_whmcs(whmcs_client, invoice_id, balance - 1)  # someone paid it in part meanwhile
    _allocate(engine, invoice_id, balance)
    before = whmcs_state.payments(invoice_id)
    report = apply_payments(engine, TENANT, whmcs_client, actor="test")
    assert report.applied == 0 and len(report.failed) == 1
    assert whmcs_state.payments(invoice_id) == before
    with tenant_session(engine, TENANT) as session:
        problem = session.scalars(select(ReconException)).one()
        assert problem.kind == "apply_failed" and "open" in problem.detail
    assert _payment_actions(engine) == ["payment.apply_failed"]
