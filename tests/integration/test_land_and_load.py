"""Raw landing, replay without provider calls, idempotent upserts, quarantine, conservation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, select, text

from connectors.pages import Page
from recon.canonical import INVOICES, TRANSACTIONS
from recon.db.models import QuarantinedRow, RawFetch, RawPayload, Transaction, Watermark
from recon.db.tenancy import admin_session, tenant_session
from recon.tenants import TenantSettings, add_tenant
from tasks import load as load_module
from tasks.land import FetchScope, land_or_replay
from tasks.load import Batch, ConservationError, Reject, load_batch

TENANT = "acme"
SCOPE = FetchScope(
    "gocardless", "acc-1", "transactions", dt.date(2026, 10, 1), dt.date(2026, 10, 31)
)


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
        add_tenant(session, "other", "Other", TenantSettings(), actor="test")
    yield app


class FakeProvider:
    """Hands out fixed pages and counts calls (stands for a connector's page iterator)."""

    def __init__(self, bodies: list[bytes], fail_after: int | None = None) -> None:
        self.bodies = bodies
        self.calls = 0
        self.fail_after = fail_after

    def __call__(self, on_page: Callable[[Page], None]) -> None:
        self.calls += 1
        for number, body in enumerate(self.bodies):
            if self.fail_after is not None and number >= self.fail_after:
                raise ConnectionError("provider went away")
            on_page(Page("/transactions", f"page={number}", 200, body))


def test_pages_are_landed_verbatim_and_replayed_without_calls(engine: Engine) -> None:
    provider = FakeProvider([b'{"page": 0}', b'{"page": 1}'])
    first = land_or_replay(engine, TENANT, SCOPE, provider)
    assert not first.replayed and provider.calls == 1
    assert [p.page.body for p in first.pages] == provider.bodies
    with tenant_session(engine, TENANT) as session:
        stored = session.scalars(select(RawPayload).order_by(RawPayload.page)).all()
        assert [bytes(r.body) for r in stored] == provider.bodies
        assert all(len(r.content_sha256) == 64 for r in stored)
    narrower = FetchScope(
        SCOPE.provider, SCOPE.account_ref, SCOPE.dataset, SCOPE.window_from, dt.date(2026, 10, 15)
    )
    for scope in (SCOPE, narrower):
        replay = land_or_replay(engine, TENANT, scope, provider)
        assert replay.replayed and replay.fetch_id == first.fetch_id
    assert provider.calls == 1
    again = land_or_replay(engine, TENANT, SCOPE, provider, refetch=True)
    assert not again.replayed and provider.calls == 2 and again.fetch_id != first.fetch_id


def test_a_failed_fetch_keeps_its_pages_but_is_never_replayed(engine: Engine) -> None:
    broken = FakeProvider([b"a", b"b", b"c"], fail_after=2)
    with pytest.raises(ConnectionError):
        land_or_replay(engine, TENANT, SCOPE, broken)
    with tenant_session(engine, TENANT) as session:
        assert len(session.scalars(select(RawPayload)).all()) == 2  # landed before the crash
        assert session.scalars(select(RawFetch.completed_at)).all() == [None]
    healthy = FakeProvider([b"a", b"b", b"c"])
    result = land_or_replay(engine, TENANT, SCOPE, healthy)
    assert not result.replayed and healthy.calls == 1 and len(result.pages) == 3


def _transactions(*rows: dict[str, Any]) -> pd.DataFrame:
    base = {
        "source": "bank",
        "account_ref": "acc-1",
        "kind": "payment",
        "status": "booked",
        "value_on": None,
        "fee_minor": 0,
        "counterparty": "Jane Doe",
        "payout_id": None,
    }
    return pd.DataFrame([{**base, **row} for row in rows])


def _batch(rows: pd.DataFrame, rejects: list[Reject] | None = None) -> Batch:
    return Batch("gocardless", TRANSACTIONS, rows, rejects or [])


def _dump(engine: Engine) -> list[tuple[Any, ...]]:
    with tenant_session(engine, TENANT) as session:
        return [
            tuple(row)
            for row in session.execute(text("SELECT * FROM transactions ORDER BY source_id")).all()
        ]


ROWS = _transactions(
    {
        "source_id": "t1",
        "booked_on": dt.date(2026, 10, 2),
        "amount_minor": 1250,
        "currency": "EUR",
        "reference": "INV 1",
    },
    {
        "source_id": "t2",
        "booked_on": dt.date(2026, 10, 2),
        "amount_minor": -500,
        "currency": "EUR",
        "reference": None,
    },
    {
        "source_id": "t3",
        "booked_on": dt.date(2026, 10, 3),
        "amount_minor": 9900,
        "currency": "GBP",
        "reference": "INV 2",
    },
)
BAD = Reject(
    "sha256:x",
    ("amount is missing",),
    {"transactionId": "t4"},
    "acc-1",
    dt.date(2026, 10, 3),
    None,
    "EUR",
)


def test_three_loads_of_one_window_give_identical_tables(engine: Engine) -> None:
    results = [load_batch(engine, TENANT, _batch(ROWS, [BAD])) for _ in range(3)]
    assert (results[0].inserted, results[0].quarantined) == (3, 1)
    assert [(r.inserted, r.updated, r.unchanged) for r in results[1:]] == [(0, 0, 3), (0, 0, 3)]
    snapshot = _dump(engine)
    load_batch(engine, TENANT, _batch(ROWS.sample(frac=1, random_state=7), [BAD]))
    assert _dump(engine) == snapshot
    with tenant_session(engine, TENANT) as session:
        quarantined = session.scalars(select(QuarantinedRow)).all()
        assert [(q.row_key, q.reasons) for q in quarantined] == [
            ("sha256:x", ["amount is missing"])
        ]


def test_pending_line_that_books_is_updated_not_duplicated(engine: Engine) -> None:
    pending = ROWS.copy()
    pending.loc[0, "status"] = "pending"
    load_batch(engine, TENANT, _batch(pending))
    booked = ROWS.copy()
    booked.loc[0, "booked_on"] = dt.date(2026, 10, 4)
    result = load_batch(engine, TENANT, _batch(booked))
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 2)
    with tenant_session(engine, TENANT) as session:
        line = session.scalars(select(Transaction).where(Transaction.source_id == "t1")).one()
        assert (line.status, line.booked_on) == ("booked", dt.date(2026, 10, 4))
        assert len(session.scalars(select(Transaction)).all()) == 3


def test_a_broken_write_fails_conservation_and_keeps_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_upsert = load_module._upsert

    def lossy_upsert(session: Any, dataset: Any, records: list[dict[str, Any]]) -> tuple[int, int]:
        return real_upsert(session, dataset, records[:-1])  # silently drops one row

    monkeypatch.setattr(load_module, "_upsert", lossy_upsert)
    with pytest.raises(ConservationError, match="conservation failed"):
        load_batch(engine, TENANT, _batch(ROWS, [BAD]), watermark=("acc-1", dt.date(2026, 10, 31)))
    with tenant_session(engine, TENANT) as session:
        assert session.scalars(select(Transaction)).all() == []
        assert session.scalars(select(QuarantinedRow)).all() == []
        assert session.scalars(select(Watermark)).all() == []


def test_watermark_moves_with_the_load_and_never_back(engine: Engine) -> None:
    load_batch(engine, TENANT, _batch(ROWS), watermark=("acc-1", dt.date(2026, 10, 31)))
    load_batch(engine, TENANT, _batch(ROWS), watermark=("acc-1", dt.date(2026, 10, 15)))
    with tenant_session(engine, TENANT) as session:
        mark = session.scalars(select(Watermark)).one()
        assert (mark.dataset, mark.loaded_through) == ("transactions", dt.date(2026, 10, 31))


def test_money_columns_must_be_integer_minor_units(engine: Engine) -> None:
    rows = ROWS.copy()
    rows["amount_minor"] = rows["amount_minor"].astype(float) / 100
    with pytest.raises(TypeError, match="integer minor units"):
        load_batch(engine, TENANT, _batch(rows))


def test_invoices_load_by_their_whmcs_id(engine: Engine) -> None:
    invoices = pd.DataFrame(
        [
            {
                "invoice_id": "10234", "invoice_num": "INV-2026-10234", "client_id": "7",
                "client_name": "Jane Doe", "company_name": None, "issued_on": dt.date(2026, 10, 1),
                "due_on": dt.date(2026, 10, 15), "total_minor": 1999, "balance_minor": 1999,
                "currency": "EUR", "status": "Unpaid",
            }
        ]
    )  # fmt: skip
    assert load_batch(engine, TENANT, Batch("whmcs", INVOICES, invoices)).inserted == 1
    invoices.loc[0, ["balance_minor", "status"]] = [0, "Paid"]
    result = load_batch(engine, TENANT, Batch("whmcs", INVOICES, invoices))
    assert (result.inserted, result.updated) == (0, 1)


def test_another_tenant_with_the_same_keys_changes_nothing_here(engine: Engine) -> None:
    """Core statements in the loader name the tenant; on SQLite nothing else would."""
    load_batch(engine, "other", _batch(ROWS))
    first = load_batch(engine, TENANT, _batch(ROWS, [BAD]))
    assert (first.inserted, first.updated, first.unchanged) == (3, 0, 0)
    with tenant_session(engine, TENANT) as session:
        assert len(session.scalars(select(Transaction)).all()) == 3


def test_a_booked_line_is_never_set_back_to_pending(engine: Engine) -> None:
    load_batch(engine, TENANT, _batch(ROWS))  # booked
    older = ROWS.copy()
    older.loc[0, ["status", "booked_on"]] = ["pending", dt.date(2026, 10, 1)]
    result = load_batch(engine, TENANT, _batch(older))  # an older window replayed later
    assert (result.updated, result.unchanged) == (0, 3)
    with tenant_session(engine, TENANT) as session:
        line = session.scalars(select(Transaction).where(Transaction.source_id == "t1")).one()
        assert (line.status, line.booked_on) == ("booked", dt.date(2026, 10, 2))
