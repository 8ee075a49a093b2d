"""Two `recon apply` of one tenant at once: every invoice is paid exactly once.

Two real processes against one sandbox WHMCS and one database (SQLite, then PostgreSQL). The
first is held inside its first AddInvoicePayment (the sandbox keeps that request until the test
lets it go), so the second starts while the first is writing: it must stop with exit code 10
and one sentence, and change nothing; the first then finishes alone.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import anyio.to_thread
import pytest
from sqlalchemy import Engine, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.sandbox.serve import RunningServer, run_in_thread
from connectors.sandbox.whmcs import API_PATH, WhmcsState, routes
from recon.canonical import transaction_ref
from recon.db.models import Allocation, AppliedPayment, AuditEntry, Transaction
from recon.db.tenancy import admin_session, tenant_session
from recon.money import minor_exponent, to_minor
from recon.tenants import TenantSettings, add_tenant
from tests.integration.whmcs_fixtures import API_SECRET, IDENTIFIER

TENANT = "acme"
INVOICES = 5
WAIT = 120.0  # seconds: only a bound on a hang, never what the test relies on


class Gate:
    """Holds the first AddInvoicePayment request until `release`; `arrived` when it is held."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.released = threading.Event()
        self._taken = False
        self._lock = threading.Lock()

    def _first(self) -> bool:
        with self._lock:
            first, self._taken = not self._taken, True
            return first

    def wrap(self, state: WhmcsState) -> Starlette:
        (route,) = routes(state)
        assert isinstance(route, Route)
        inner = route.endpoint

        async def gated(request: Request) -> Response:
            body = await request.body()  # cached on the request: the endpoint reads it again
            action = parse_qs(body.decode()).get("action", [""])[0]
            if action == "AddInvoicePayment" and self._first():
                self.arrived.set()
                await anyio.to_thread.run_sync(self.released.wait)
            response: Response = await inner(request)
            return response

        return Starlette(routes=[Route(API_PATH, gated, methods=["POST"])])


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def gated_server(whmcs_state: WhmcsState, gate: Gate) -> Iterator[RunningServer]:
    with run_in_thread(gate.wrap(whmcs_state)) as server:
        yield server
        gate.released.set()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> tuple[Engine, Engine]:
    """(application engine, schema owner engine) of a migrated database."""
    if request.param == "sqlite":
        engine: Engine = request.getfixturevalue("sqlite_engine")
        return engine, engine
    return request.getfixturevalue("pg_app_engine"), request.getfixturevalue("pg_owner_engine")


def _open_invoices(state: WhmcsState) -> list[tuple[int, int, str]]:
    tables = state.tables()
    clients = {c["id"]: c for c in tables["tblclients"]}
    currencies = {c["id"]: c["code"] for c in tables["tblcurrencies"]}
    found = []
    for invoice in tables["tblinvoices"]:
        code = currencies[clients[invoice["userid"]]["currency"]]
        balance = to_minor(state.balance(int(invoice["id"])), code)
        if invoice["status"] == "Unpaid" and balance > 0 and minor_exponent(code) <= 2:
            found.append((int(invoice["id"]), balance, code))
    return found[:INVOICES]


def _recon_apply(url: str, cwd: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "RECON_DATABASE_URL": url,
        "RECON_SECRET_ACME__WHMCS_API_IDENTIFIER": IDENTIFIER,
        "RECON_SECRET_ACME__WHMCS_API_SECRET": API_SECRET,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "apps", "apply", "--tenant", TENANT],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_applies_at_once_pay_every_invoice_exactly_once(
    database: tuple[Engine, Engine],
    whmcs_state: WhmcsState,
    gated_server: RunningServer,
    gate: Gate,
    tmp_path: Path,
) -> None:
    engine, owner = database
    with admin_session(owner) as session:
        settings = TenantSettings.model_validate(
            {"auto_apply": True, "whmcs": {"base_url": gated_server.url}}
        )
        add_tenant(session, TENANT, "Acme", settings, actor="test")
    invoices = _open_invoices(whmcs_state)
    assert len(invoices) == INVOICES
    with tenant_session(engine, TENANT) as session:
        for n, (invoice_id, balance, currency) in enumerate(invoices):
            session.add(
                Transaction(
                    tenant_id=TENANT, source="bank", account_ref="acc-1", source_id=f"bank-{n}",
                    booked_on=dt.date(2025, 3, 20), amount_minor=balance, currency=currency,
                    reference=f"INV {invoice_id}",
                )
            )  # fmt: skip
            session.add(
                Allocation(
                    tenant_id=TENANT, allocation_key=f"k-{n}",
                    transaction_ref=transaction_ref("bank", "acc-1", f"bank-{n}"),
                    invoice_id=str(invoice_id), amount_minor=balance, currency=currency,
                    rule="ref_amount_payer", confidence=99, decision="auto",
                )
            )  # fmt: skip
    url = engine.url.render_as_string(hide_password=False)

    first = _recon_apply(url, tmp_path)
    try:
        while not gate.arrived.wait(0.05):
            assert first.poll() is None, first.communicate()
        # The first apply is inside its first AddInvoicePayment: the second starts now.
        second = _recon_apply(url, tmp_path)
        out, err = second.communicate(timeout=WAIT)
    finally:
        gate.released.set()
        first_out, first_err = first.communicate(timeout=WAIT)

    assert first.returncode == 0, first_err
    assert f"applied {INVOICES}" in first_out
    assert second.returncode == 10, (out, err)
    message = " ".join(err.split())
    assert message == (
        f"error: another run for tenant {TENANT!r} is writing right now; try again when it finishes"
    )
    for n, (invoice_id, _, _) in enumerate(invoices):
        assert len(whmcs_state.payments(invoice_id)) == 1 + _seeded(whmcs_state, invoice_id)
        assert len(whmcs_state.payments(invoice_id, f"bank-{n}")) == 1
        assert whmcs_state.status(invoice_id) == "Paid"
    with tenant_session(engine, TENANT) as session:
        assert set(session.scalars(select(AppliedPayment.state))) == {"applied"}
        assert session.query(AppliedPayment).count() == INVOICES
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("payment.%"))
        ).all()
        assert actions == ["payment.applied"] * INVOICES


def _seeded(state: WhmcsState, invoice_id: int) -> int:
    """Payments the seed records on the invoice (other than the bank-* ones applied here)."""
    return sum(1 for p in state.payments(invoice_id) if not str(p["transid"]).startswith("bank-"))
