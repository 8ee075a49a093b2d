"""An unchanged replay writes nothing: the loader compares content hashes and sends no statement
for a row it already holds, and a changed row is the only one written (SQLite and PostgreSQL).

Writes are counted with a `before_cursor_execute` listener on the engine, so every INSERT,
UPDATE or DELETE the loader sends is seen, whatever builds it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, event, select

from recon.canonical import INVOICES, RECORDED, TRANSACTIONS
from recon.db.models import Invoice
from recon.db.tenancy import admin_session, tenant_session
from recon.tenants import TenantSettings, add_tenant
from tasks.load import Batch, load_batch, load_batches

TENANT = "acme"
N_INVOICES = 1_000  # more than one key chunk of the loader
WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated database with tenant `acme`, as the application connects to it."""
    if request.param == "sqlite":
        owner = app = request.getfixturevalue("sqlite_engine")
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
    with admin_session(owner) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    yield app


@contextmanager
def counted_writes(engine: Engine) -> Iterator[list[str]]:
    """Every INSERT, UPDATE or DELETE sent on `engine` inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith(WRITES):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _invoices() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "invoice_id": str(10_000 + n), "invoice_num": f"INV-2026-{n:05d}",
                "client_id": str(n % 97), "client_name": f"Client {n % 97}",
                "company_name": None, "issued_on": dt.date(2026, 10, 1),
                "due_on": dt.date(2026, 10, 15), "total_minor": 1999 + n,
                "balance_minor": 0 if n % 3 == 0 else 1999 + n, "currency": "EUR",
                "status": "Paid" if n % 3 == 0 else "Unpaid",
            }
            for n in range(N_INVOICES)
        ]
    )  # fmt: skip


def _recorded() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "whmcs_txn_id": str(n), "invoice_id": str(10_000 + n),
                "recorded_on": dt.date(2026, 10, 2), "amount_minor": 1999 + n, "fees_minor": 0,
                "currency": "EUR", "gateway": "banktransfer", "transid": f"T{n}",
            }
            for n in range(0, N_INVOICES, 3)
        ]
    )  # fmt: skip


def _bank(status: str = "booked") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "source": "bank", "account_ref": "acc-1", "source_id": f"b{n}", "kind": "payment",
                "status": status, "booked_on": dt.date(2026, 10, 2), "value_on": None,
                "amount_minor": 1999 + n, "fee_minor": 0, "currency": "EUR",
                "counterparty": f"Client {n % 97}", "reference": f"INV-2026-{n:05d}",
                "payout_id": None,
            }
            for n in range(0, N_INVOICES, 3)
        ]
    )  # fmt: skip


def _batches() -> list[Batch]:
    return [
        Batch("whmcs", INVOICES, _invoices()),
        Batch("whmcs", RECORDED, _recorded()),
        Batch("gocardless", TRANSACTIONS, _bank()),
    ]


def _updated_at(engine: Engine) -> dict[str, dt.datetime]:
    with tenant_session(engine, TENANT) as session:
        rows = session.execute(select(Invoice.invoice_id, Invoice.updated_at)).all()
        return {row.invoice_id: row.updated_at for row in rows}


def test_an_unchanged_replay_writes_nothing(engine: Engine) -> None:
    first = load_batches(engine, TENANT, _batches())
    assert [r.inserted for r in first] == [N_INVOICES, 334, 334]
    with counted_writes(engine) as writes:
        again = load_batches(engine, TENANT, _batches())
    assert writes == []
    assert [(r.inserted, r.updated, r.unchanged) for r in again] == [
        (0, 0, N_INVOICES),
        (0, 0, 334),
        (0, 0, 334),
    ]


def test_a_changed_invoice_is_the_only_row_written(engine: Engine) -> None:
    load_batches(engine, TENANT, _batches())
    before = _updated_at(engine)
    invoices = _invoices()
    invoices.loc[1, "balance_minor"] = 0
    invoices.loc[1, "status"] = "Paid"
    with counted_writes(engine) as writes:
        result = load_batch(engine, TENANT, Batch("whmcs", INVOICES, invoices))
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, N_INVOICES - 1)
    assert writes and all("invoices" in statement for statement in writes)
    after = _updated_at(engine)
    assert {k for k in after if after[k] != before[k]} == {"10001"}
    with tenant_session(engine, TENANT) as session:
        paid = session.scalars(select(Invoice).where(Invoice.invoice_id == "10001")).one()
        assert (paid.balance_minor, paid.status) == (0, "Paid")


def test_an_older_pending_page_replayed_over_booked_lines_writes_nothing(engine: Engine) -> None:
    load_batch(engine, TENANT, Batch("gocardless", TRANSACTIONS, _bank("booked")))
    with counted_writes(engine) as writes:
        result = load_batch(engine, TENANT, Batch("gocardless", TRANSACTIONS, _bank("pending")))
    assert writes == []
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 334)
