"""Stripe balance transactions keyed by their own id, and payouts that arrive a window late.

Real sandbox over HTTP, real databases (SQLite and PostgreSQL as the application role).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, inspect, text

from connectors.sandbox.stripe import StripeState, balance_transaction_id, payment_intent_id
from connectors.stripe import StripeClient
from recon.db import migrate
from recon.db.engine import make_engine
from recon.db.models import Invoice, RecordedPayment, Run
from recon.db.tenancy import admin_session, tenant_session
from recon.matching.config import MatchConfig
from recon.money import format_amount
from recon.tenants import TenantSettings, add_tenant
from tasks.normalise_stripe import sync_window
from tasks.reconcile import build_frames, reconcile_window, run_engine
from tests.integration.stripe_fixtures import (
    ACCOUNT,
    TENANT,
    WINDOW,
    World,
    sleep,
    stripe_client,
    stripe_server,
    stripe_state,
    world,
)

__all__ = ["sleep", "stripe_client", "stripe_server", "stripe_state", "world"]

SEPTEMBER = (dt.date(2026, 9, 20), dt.date(2026, 9, 30))
BOTH = (SEPTEMBER[0], WINDOW[1])
OTHERS = ("forward", "union")
NATURAL = {
    "transactions": "source, account_ref, source_id, kind, status, booked_on, value_on, "
    "amount_minor, fee_minor, currency, counterparty, reference, payout_id, charge_id, "
    "payment_intent, content_sha256",
    "payouts": "source, payout_id, arrival_on, amount_minor, currency, status, content_sha256",
    "payout_lines": "source, payout_id, transaction_id, content_sha256",
    "quarantined_rows": "provider, dataset, row_key",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated database with tenants `acme`, `forward` and `union`, as the application
    connects to it."""
    if request.param == "sqlite":
        owner = app = request.getfixturevalue("sqlite_engine")
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
    with admin_session(owner) as session:
        for tenant in (TENANT, *OTHERS):
            add_tenant(session, tenant, tenant.title(), TenantSettings(), actor="test")
    yield app


def _natural(engine: Engine, tenant: str) -> dict[str, list[tuple[str, ...]]]:
    """Every Stripe table on its natural columns and content hash, sorted."""
    with tenant_session(engine, tenant) as session:
        return {
            table: sorted(
                tuple(str(v) for v in row)
                for row in session.execute(
                    text(f"SELECT {columns} FROM {table} WHERE tenant_id = :t"), {"t": tenant}
                )
            )
            for table, columns in NATURAL.items()
        }


def _everything(engine: Engine, tenant: str = TENANT) -> dict[str, list[tuple[Any, ...]]]:
    """The tables whole: ids, timestamps and lineage included."""
    with tenant_session(engine, tenant) as session:
        return {
            table: [
                tuple(r)
                for r in session.execute(
                    text(f"SELECT * FROM {table} WHERE tenant_id = :t ORDER BY id"), {"t": tenant}
                )
            ]
            for table in NATURAL
        }


def _transactions(engine: Engine, tenant: str = TENANT) -> pd.DataFrame:
    with tenant_session(engine, tenant) as session:
        result = session.execute(
            text(
                "SELECT source_id, kind, booked_on, amount_minor, payout_id, charge_id "
                "FROM transactions WHERE tenant_id = :t ORDER BY source_id"
            ),
            {"t": tenant},
        )
        frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    frame["booked_on"] = pd.to_datetime(frame["booked_on"]).dt.date
    return frame


def _sync(
    engine: Engine, client: StripeClient, window: tuple[dt.date, dt.date], **kwargs: Any
) -> Any:
    return sync_window(engine, kwargs.pop("tenant", TENANT), client, ACCOUNT, *window, **kwargs)


def _late_charges(world: World, window: tuple[dt.date, dt.date]) -> dict[str, str]:
    """Charge balance transaction id -> payout, for charges booked in `window` whose payout is
    created after it."""
    created = {p["payout_id"]: p["created"].date() for p in world.payouts.to_dict("records")}
    return {
        balance_transaction_id(c["charge_id"]): c["payout_id"]
        for c in world.charges.to_dict("records")
        if window[0] <= c["created"].date() <= window[1]
        and isinstance(c["payout_id"], str)
        and created[c["payout_id"]] > window[1]
    }


def test_a_charge_with_several_balance_transactions_loads_each_and_quarantines_none(
    engine: Engine, world: World, stripe_client: StripeClient, stripe_state: StripeState
) -> None:
    won = world.disputes[world.disputes["status"] == "won"].to_dict("records")
    assert len(won) == 2
    served = {d["id"]: d for d in stripe_state.objects("disputes")}
    assert all(len(served[d["dispute_id"]]["balance_transactions"]) == 2 for d in won)

    run = _sync(engine, stripe_client, WINDOW)

    assert run.batches.transactions.rejects == []
    with tenant_session(engine, TENANT) as session:
        quarantined = text("SELECT COUNT(*) FROM quarantined_rows WHERE tenant_id = :t")
        assert session.execute(quarantined, {"t": TENANT}).scalar() == 0
    loaded = _transactions(engine)
    for dispute in won:
        mine = loaded[loaded["charge_id"] == dispute["charge_id"]]
        assert set(mine["source_id"]) == {
            balance_transaction_id(dispute["charge_id"]),
            balance_transaction_id(dispute["dispute_id"]),
            balance_transaction_id(dispute["dispute_id"], reversal=True),
        }
        amount = int(dispute["amount_minor"])
        by_kind = sorted(zip(mine["kind"], mine["amount_minor"], strict=True))
        assert by_kind == [("charge", amount), ("dispute", -amount), ("dispute", amount)]


def test_a_payout_in_a_later_window_fills_the_payout_of_earlier_charges(
    engine: Engine, world: World, stripe_client: StripeClient, stripe_state: StripeState
) -> None:
    late = _late_charges(world, SEPTEMBER)
    assert len(late) >= 3

    _sync(engine, stripe_client, SEPTEMBER)
    before = _transactions(engine).set_index("source_id")
    assert before.loc[sorted(late), "payout_id"].isna().all()

    october = _sync(engine, stripe_client, WINDOW)
    after = _transactions(engine).set_index("source_id")
    assert after.loc[sorted(late), "payout_id"].to_dict() == late
    assert (after.loc[sorted(late), "booked_on"] <= SEPTEMBER[1]).all()
    assert october.results[0].inserted > 0

    # re-running either window, replayed or refetched, changes nothing at all
    snapshot = _everything(engine)
    stripe_state.faults.clear_log()
    for window in (SEPTEMBER, WINDOW):
        replay = _sync(engine, stripe_client, window)
        assert replay.landed.replayed
        assert _everything(engine) == snapshot
    assert stripe_state.faults.count() == 0
    for window in (SEPTEMBER, WINDOW):
        refetch = _sync(engine, stripe_client, window, refetch=True)
        assert [(r.inserted, r.updated) for r in refetch.results] == [(0, 0)] * 3
        assert _everything(engine) == snapshot


def test_either_order_and_one_run_over_both_end_in_the_same_tables(
    engine: Engine, stripe_client: StripeClient
) -> None:
    _sync(engine, stripe_client, WINDOW)  # the later window first
    _sync(engine, stripe_client, SEPTEMBER)
    _sync(engine, stripe_client, SEPTEMBER, tenant="forward")
    _sync(engine, stripe_client, WINDOW, tenant="forward")
    _sync(engine, stripe_client, BOTH, tenant="union")

    union = _natural(engine, "union")
    assert len(union["transactions"]) > 60 and union["quarantined_rows"] == []
    assert _natural(engine, TENANT) == union
    assert _natural(engine, "forward") == union
    paid = [row for row in union["transactions"] if row[12] != "None"]
    lines = {(row[1], row[2]) for row in union["payout_lines"]}
    assert {(row[12], row[2]) for row in paid} == lines  # every line's transaction knows it


def test_the_engine_confirms_stripe_charges_by_the_transid_whmcs_recorded(
    engine: Engine, world: World, stripe_client: StripeClient
) -> None:
    _sync(engine, stripe_client, WINDOW)
    loaded = _transactions(engine)
    charges = loaded[loaded["kind"] == "charge"].head(3).to_dict("records")
    recorded_under = [
        charges[0]["charge_id"],
        charges[1]["charge_id"],
        payment_intent_id(charges[2]["charge_id"]),  # WHMCS's Stripe module may keep the intent
    ]
    with tenant_session(engine, TENANT) as session:
        currency = {
            r[0]: r[1]
            for r in session.execute(
                text("SELECT source_id, currency FROM transactions WHERE tenant_id = :t"),
                {"t": TENANT},
            )
        }
        for n, (charge, transid) in enumerate(zip(charges, recorded_under, strict=True)):
            amount, ccy = int(charge["amount_minor"]), currency[charge["source_id"]]
            invoice_id = str(90_000 + n)
            # WHMCS recorded this payment; as much again is still due
            session.add(
                Invoice(
                    tenant_id=TENANT,
                    invoice_id=invoice_id,
                    client_id=str(500 + n),
                    issued_on=charge["booked_on"],
                    total_minor=2 * amount,
                    balance_minor=amount,
                    currency=ccy,
                    status="Unpaid",
                )
            )
            session.add(
                RecordedPayment(
                    tenant_id=TENANT,
                    whmcs_txn_id=str(80_000 + n),
                    invoice_id=invoice_id,
                    recorded_on=charge["booked_on"],
                    amount_minor=amount,
                    fees_minor=0,
                    currency=ccy,
                    gateway="stripe",
                    transid=transid,
                )
            )
        frames, _ = build_frames(session, WINDOW)
    result = run_engine(frames, MatchConfig())
    refs = {f"stripe:{ACCOUNT}:{c['source_id']}": str(90_000 + n) for n, c in enumerate(charges)}
    allocations = result.allocations[result.allocations["transaction_id"].isin(list(refs))]
    got = {
        (r["transaction_id"], str(r["invoice_id"]), r["rule"])
        for r in allocations.to_dict("records")
    }
    assert got == {(ref, invoice, "recorded_transid") for ref, invoice in refs.items()}

    # stored, these allocations are what WHMCS already has: a later window does not take them
    # off the invoices' balances a second time
    run_id = str(uuid.uuid4())
    with tenant_session(engine, TENANT) as session:
        session.add(Run(id=run_id, tenant_id=TENANT, window_from=WINDOW[0], window_to=WINDOW[1]))
    reconcile_window(engine, TENANT, WINDOW, run_id=run_id)
    with tenant_session(engine, TENANT) as session:
        later, _ = build_frames(session, (WINDOW[1] + dt.timedelta(days=1), BOTH[1]))
    balances = later["invoices"].set_index("invoice_id")["balance"]
    for n, charge in enumerate(charges):
        due = format_amount(int(charge["amount_minor"]), currency[charge["source_id"]])
        assert balances[str(90_000 + n)] == due


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_migration_0005_keeps_the_charge_of_rows_keyed_by_it_and_downgrades(
    request: pytest.FixtureRequest, backend: str
) -> None:
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_owner_url")
    engine = make_engine(url)
    migrate.upgrade(engine, "0004")
    rows = [("stripe", "ch_1Old"), ("stripe", "txn_1New"), ("bank", "ch_not_stripe")]
    with engine.begin() as conn:
        if backend == "postgres":  # row-level security is forced on the owner too
            conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": TENANT})
        conn.execute(
            text("INSERT INTO tenants (id, name, settings, active) VALUES (:t, 'Acme', '{}', :a)"),
            {"t": TENANT, "a": True},
        )
        for source, source_id in rows:
            conn.execute(
                text(
                    "INSERT INTO transactions (tenant_id, source, account_ref, source_id, kind, "
                    "status, booked_on, amount_minor, fee_minor, currency) VALUES (:t, :s, "
                    "'acct', :i, 'charge', 'booked', '2026-10-01', 100, 0, 'EUR')"
                ),
                {"t": TENANT, "s": source, "i": source_id},
            )

    def read(columns: str) -> list[tuple[Any, ...]]:
        with engine.begin() as conn:
            if backend == "postgres":
                conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": TENANT})
            query = text(f"SELECT {columns} FROM transactions ORDER BY source_id")
            return [tuple(r) for r in conn.execute(query)]

    migrate.upgrade(engine)
    assert read("source_id, charge_id, payment_intent") == [
        ("ch_1Old", "ch_1Old", None),
        ("ch_not_stripe", None, None),
        ("txn_1New", None, None),
    ]
    migrate.downgrade(engine, "0004")
    assert "charge_id" not in {c["name"] for c in inspect(engine).get_columns("transactions")}
    assert read("source_id") == [("ch_1Old",), ("ch_not_stripe",), ("txn_1New",)]
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()
