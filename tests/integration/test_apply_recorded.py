"""Write-back over books WHMCS already records: only money WHMCS does not have is ever added.

The real pipeline pieces (landing, validation, load, the matching engine, apply) against the
sandbox, on SQLite and PostgreSQL: a run writes back only what its engine found as new money,
never a payment WHMCS records already (with a transid, or entered by hand without one); and a
run over books where WHMCS already recorded everything adds nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, select

from connectors.runtime import Runtime
from connectors.sandbox.serve import RunningServer, run_in_thread
from connectors.sandbox.whmcs import WhmcsState
from connectors.sandbox.world import SandboxWorld, world_ending
from connectors.whmcs import WhmcsClient
from recon.audit import verify_chain
from recon.db import migrate
from recon.db.engine import make_engine
from recon.db.models import AppliedPayment, AuditEntry
from recon.db.tenancy import admin_session, tenant_session
from recon.money import format_amount, to_minor
from recon.secrets import WHMCS_API_IDENTIFIER, WHMCS_API_SECRET
from recon.settings import get_settings
from recon.tenants import TenantSettings, add_tenant, get_tenant, parse_settings
from recon.writeback import confirms_recorded
from tasks.apply import ApplyReport, apply_locked, plan_payments
from tasks.decisions import live_allocations
from tasks.extract import SourceContext, extract_source, plan_sources
from tasks.reconcile import matching_config, reconcile_window
from tasks.runs import finish_run, start_run
from tests.conftest import APP_LOGIN_ROLE, PG_HOST, PG_PORT, PG_SUPERUSER, _pg_conninfo
from tests.services import POSTGRES_START, require_service

TENANT = "acme"
AS_OF = dt.date(2026, 10, 31)
WINDOW = (AS_OF - dt.timedelta(days=29), AS_OF)


@dataclass
class Books:
    """A served sandbox and the way to reach it."""

    sandbox: SandboxWorld
    server: RunningServer
    runtime: Runtime

    @property
    def whmcs(self) -> WhmcsState:
        return self.sandbox.whmcs

    def client(self) -> WhmcsClient:
        secrets = self.runtime.secrets
        return WhmcsClient(
            f"{self.server.url}",
            secrets.get(WHMCS_API_IDENTIFIER, TENANT),
            secrets.get(WHMCS_API_SECRET, TENANT),
        )

    def database(self, url: str, owner_url: str | None = None) -> Engine:
        """A migrated database holding the tenant (registered by the schema owner)."""
        owner = make_engine(owner_url or url)
        migrate.upgrade(owner)
        settings = TenantSettings.model_validate(self.sandbox.tenant_settings(self.server.url))
        with admin_session(owner) as session:
            add_tenant(session, TENANT, "Acme Hosting", settings, actor="test")
        owner.dispose()
        return make_engine(url)

    def reconcile(self, engine: Engine) -> None:
        """Land, validate, load and match the window: a run without its Prefect wrapping."""
        with admin_session(engine) as session:
            settings = parse_settings(get_tenant(session, TENANT).settings)
        ctx = SourceContext(engine, TENANT, settings, self.runtime.secrets)
        sources = plan_sources(settings)
        run_id = start_run(engine, TENANT, WINDOW, [s.kind for s in sources])
        for source in sources:
            extract_source(ctx, source, WINDOW, run_id=run_id)
        reconcile_window(engine, TENANT, WINDOW, run_id=run_id, config=matching_config(settings))
        finish_run(engine, TENANT, run_id, status="completed")

    def apply(self, engine: Engine) -> ApplyReport:
        with self.client() as client:
            return apply_locked(engine, TENANT, client, actor="test")


@pytest.fixture
def books(monkeypatch: pytest.MonkeyPatch) -> Iterator[Books]:
    world = world_ending(AS_OF, n_invoices=160, days=30, seed=11)
    sandbox = SandboxWorld(world, tenant=TENANT, as_of=AS_OF, bank_daily_limit=1000)
    with run_in_thread(sandbox.build_app()) as server:
        monkeypatch.setenv("RECON_VAULT_ADDR", server.url)
        monkeypatch.setenv("RECON_VAULT_ROLE_ID", sandbox.credentials.vault_role_id)
        monkeypatch.setenv("RECON_VAULT_SECRET_ID", sandbox.credentials.vault_secret_id)
        get_settings.cache_clear()
        yield Books(sandbox, server, Runtime())


Urls = tuple[str, str | None]
"""(application URL, schema owner URL or None when it is the same)."""


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Urls]]:
    """Makes fresh, empty databases of one kind; dropped afterwards."""
    made: list[str] = []

    def new() -> Urls:
        n = len(made)
        made.append(f"recon_test_{uuid.uuid4().hex[:12]}")
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / f'recon{n}.db'}", None
        require_service("PostgreSQL", PG_HOST, PG_PORT, POSTGRES_START)
        name = made[-1]
        with psycopg.connect(_pg_conninfo("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        owner = f"postgresql+psycopg://{PG_SUPERUSER}@{PG_HOST}:{PG_PORT}/{name}"
        owner_engine = make_engine(owner)
        migrate.upgrade(owner_engine)
        owner_engine.dispose()
        with psycopg.connect(_pg_conninfo("postgres"), autocommit=True) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_LOGIN_ROLE,)
            ).fetchone():
                conn.execute(
                    sql.SQL(
                        "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE recon_app"
                    ).format(sql.Identifier(APP_LOGIN_ROLE))
                )
            conn.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO recon_app").format(sql.Identifier(name))
            )
        return f"postgresql+psycopg://{APP_LOGIN_ROLE}@{PG_HOST}:{PG_PORT}/{name}", owner

    yield new
    if request.param == "postgresql":
        with psycopg.connect(_pg_conninfo("postgres"), autocommit=True) as conn:
            for name in made:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def whmcs_payments(state: WhmcsState) -> list[tuple[int, int, str, str]]:
    """(invoice, amount in minor units, transid, date) of every payment WHMCS records."""
    tables = state.tables()
    clients = {c["id"]: c for c in tables["tblclients"]}
    currencies = {c["id"]: c["code"] for c in tables["tblcurrencies"]}
    invoices = {i["id"]: clients[i["userid"]] for i in tables["tblinvoices"]}
    return sorted(
        (
            int(x["invoiceid"]),
            to_minor(x["amountin"], currencies[invoices[x["invoiceid"]]["currency"]]),
            str(x["transid"]),
            str(x["date"]),
        )
        for x in tables["tblaccounts"]
    )


def overpaid(state: WhmcsState) -> list[int]:
    """Invoices WHMCS shows paid past their total."""
    return [int(i["id"]) for i in state.tables()["tblinvoices"] if state.balance(int(i["id"])) < 0]


def test_a_run_writes_back_only_new_money_and_a_run_over_recorded_books_adds_nothing(
    books: Books, databases: Callable[[], Urls]
) -> None:
    engine = books.database(*databases())
    books.reconcile(engine)
    with tenant_session(engine, TENANT) as session:
        auto = [a for a in live_allocations(session) if a.decision == "auto"]
    confirmations = [a for a in auto if confirms_recorded(a.rule)]
    new_money = [a for a in auto if not confirms_recorded(a.rule)]
    assert confirmations and new_money  # the books hold both kinds
    before = whmcs_payments(books.whmcs)
    report = books.apply(engine)
    after = whmcs_payments(books.whmcs)
    added = [p for p in after if p not in before]
    assert report.failed == [] and report.applied == len(added)
    written = {
        (int(a.invoice_id), a.amount_minor, a.transaction_ref.split(":", 2)[2]) for a in new_money
    }
    assert {(i, amount, transid) for i, amount, transid, _ in added} <= written
    assert overpaid(books.whmcs) == []
    # Every payment the engine confirmed is still recorded once, never added again.
    for a in confirmations:
        assert (int(a.invoice_id), a.transaction_ref.split(":", 2)[2]) not in {
            (i, t) for i, _, t, _ in added
        }
    with tenant_session(engine, TENANT) as session:
        writes = session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("payment.%"))
        ).all()
        assert len(writes) == session.query(AppliedPayment).count() == len(report.planned)
        assert verify_chain(session, TENANT).ok
    engine.dispose()

    # Books where WHMCS already records everything: a fresh database over them applies nothing.
    fresh = books.database(*databases())
    books.reconcile(fresh)
    again = books.apply(fresh)
    assert (again.applied, again.failed) == (0, [])
    assert whmcs_payments(books.whmcs) == after
    fresh.dispose()


def test_payments_entered_by_hand_are_found_in_whmcs_not_added(
    books: Books, databases: Callable[[], Urls]
) -> None:
    engine = books.database(*databases())
    books.reconcile(engine)
    with tenant_session(engine, TENANT) as session:
        planned = plan_payments(session, "banktransfer")
    assert planned
    # Someone records each payment in WHMCS by hand, without a transid, before apply runs.
    with books.client() as client:
        for p in planned:
            client.call(
                "AddInvoicePayment",
                {
                    "invoiceid": p.invoice_id,
                    "transid": "",
                    "gateway": p.gateway,
                    "date": f"{p.paid_on.isoformat()} 00:00:00",
                    "amount": format_amount(p.amount_minor, p.currency),
                },
                idempotent=False,
                record=False,
            )
    before = whmcs_payments(books.whmcs)
    report = books.apply(engine)
    assert (report.applied, report.failed) == (0, [])
    assert report.already_in_whmcs == len(planned)
    assert whmcs_payments(books.whmcs) == before
    assert overpaid(books.whmcs) == []
    with tenant_session(engine, TENANT) as session:
        rows = session.scalars(select(AppliedPayment)).all()
        assert {r.state for r in rows} == {"applied"}
        assert all(r.response["created"] is False for r in rows)
        assert len({r.response["whmcs_txn_id"] for r in rows}) == len(rows)  # one row each
        found = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("payment.%"))
        ).all()
        assert found == ["payment.found_in_whmcs"] * len(planned)
    engine.dispose()
