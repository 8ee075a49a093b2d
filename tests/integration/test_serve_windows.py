"""Serving a window from the store: covering fetches for sub-windows, supersets and overlaps,
the newest fetch of each day, replays cut to the window, and unfinished fetches that are never
replayed nor counted (marked superseded once a complete fetch covers them). SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, func, select

from connectors.pages import Page
from recon.db.models import RawFetch, Transaction
from recon.db.tenancy import admin_session, tenant_session
from recon.tenants import TenantSettings, add_tenant
from tasks.land import FetchScope, find_cover, serve
from tasks.load import load_batch, restrict
from tasks.normalise_gocardless import BANK_ENDPOINT, bank_batch

TENANT = "acme"
ACCOUNT = "acc-1"
OCT = dt.date(2026, 10, 1)


def day(n: int) -> dt.date:
    return OCT + dt.timedelta(days=n - 1)


def scope(first: int, last: int) -> FetchScope:
    return FetchScope("gocardless", ACCOUNT, "transactions", day(first), day(last))


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


def line(n: int) -> dict[str, object]:
    """One booked bank line on day n of October, 10.00 + n EUR."""
    return {
        "transactionId": f"t{n}",
        "bookingDate": day(n).isoformat(),
        "transactionAmount": {"amount": f"{10 + n}.00", "currency": "EUR"},
        "debtorName": f"Payer {n}",
        "remittanceInformationUnstructured": f"INV-{n}",
    }


class Bank:
    """A bank answering for a window with its lines booked in it; counts calls; can die."""

    def __init__(self) -> None:
        self.calls = 0

    def fetch(
        self, s: FetchScope, *, die: bool = False
    ) -> Callable[[Callable[[Page], None]], None]:
        def run(on_page: Callable[[Page], None]) -> None:
            self.calls += 1
            lines = [line(n) for n in range(1, 32) if s.window_from <= day(n) <= s.window_to]
            body = json.dumps({"transactions": {"booked": lines, "pending": []}}).encode()
            on_page(Page(BANK_ENDPOINT, f"from={s.window_from}", 200, body))
            if die:
                raise ConnectionError("killed half-way")

        return run


def served(engine: Engine, bank: Bank, s: FetchScope, **kwargs: bool) -> tuple[bool, list[int]]:
    result = serve(engine, TENANT, s, bank.fetch(s), **kwargs)
    return result.replayed, [f.fetch_id for f in result.fetches]


def test_sub_windows_supersets_and_overlaps_are_served_by_the_fetches_that_cover_them(
    engine: Engine,
) -> None:
    bank = Bank()
    assert served(engine, bank, scope(1, 15)) == (False, [1])
    assert served(engine, bank, scope(16, 31)) == (False, [2])
    assert served(engine, bank, scope(1, 31)) == (True, [1, 2])  # superset of the parts
    assert served(engine, bank, scope(10, 20)) == (True, [1, 2])  # overlap of both
    assert served(engine, bank, scope(3, 5)) == (True, [1])  # sub-window
    assert bank.calls == 2
    assert served(engine, bank, scope(25, 31), refetch=True) == (False, [3])
    # each day is served by the newest fetch that holds it
    assert find_cover(engine, TENANT, scope(20, 31)) == find_cover(engine, TENANT, scope(16, 31))
    assert [f.fetch_id for f in find_cover(engine, TENANT, scope(26, 30)) or []] == [3]
    assert [f.fetch_id for f in find_cover(engine, TENANT, scope(20, 26)) or []] == [2, 3]
    # a margin day no fetch holds is no reason to fetch; a window day is
    assert find_cover(engine, TENANT, scope(28, 31), margin_days=3) is not None
    assert (
        find_cover(
            engine,
            TENANT,
            FetchScope(
                "gocardless", ACCOUNT, "transactions", day(30), day(31) + dt.timedelta(days=1)
            ),
        )
        is None
    )


def test_a_replay_is_cut_to_the_window_and_its_grace_days(engine: Engine) -> None:
    bank = Bank()
    serve(engine, TENANT, scope(1, 31), bank.fetch(scope(1, 31)))
    replay = serve(engine, TENANT, scope(10, 12), bank.fetch(scope(10, 12)), margin_days=3)
    assert replay.replayed and bank.calls == 1
    batch = restrict(bank_batch(replay.pages, ACCOUNT), day(7), day(15))
    assert sorted(batch.rows["booked_on"]) == [day(n) for n in range(7, 16)]
    result = load_batch(engine, TENANT, batch)  # conservation holds for what is served
    assert result.inserted == 9


def test_pages_of_an_unfinished_fetch_are_never_served_nor_counted(engine: Engine) -> None:
    bank = Bank()
    with pytest.raises(ConnectionError):
        serve(engine, TENANT, scope(1, 31), bank.fetch(scope(1, 31), die=True))
    # a complete fetch of a shorter window does not cover the unfinished one
    serve(engine, TENANT, scope(1, 10), bank.fetch(scope(1, 10)))
    with tenant_session(engine, TENANT) as session:
        unfinished = session.get(RawFetch, 1)
        assert unfinished is not None and unfinished.superseded_at is None
    replayed, fetches = served(engine, bank, scope(1, 31))
    assert not replayed and 1 not in fetches  # the unfinished pages are not a cover
    with tenant_session(engine, TENANT) as session:
        unfinished = session.get(RawFetch, 1)
        assert unfinished is not None and unfinished.superseded_at is not None
        assert unfinished.completed_at is None
    replay = serve(engine, TENANT, scope(1, 31), bank.fetch(scope(1, 31)))
    assert replay.replayed and 1 not in [f.fetch_id for f in replay.fetches]
    load_batch(engine, TENANT, bank_batch(replay.pages, ACCOUNT))  # conservation holds
    with tenant_session(engine, TENANT) as session:
        assert session.scalar(select(func.count()).select_from(Transaction)) == 31
