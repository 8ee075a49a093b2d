"""Landing in batches: pages are committed every `batch_pages` (or `batch_bytes`), the last batch
with the fetch's completion, and a fetch abandoned mid-way (a killed process) stays unfinished, is
superseded by the next complete fetch and is never served."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, func, select

from connectors.pages import Page
from recon.db.models import RawFetch, RawPayload
from recon.db.tenancy import admin_session, tenant_session
from recon.tenants import TenantSettings, add_tenant
from tasks.land import FetchScope, PageLander, find_cover, serve

TENANT = "acme"
SCOPE = FetchScope("whmcs", "whmcs", "invoices", dt.date(2026, 10, 1), dt.date(2026, 10, 31))


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


def _page(number: int, size: int = 10) -> Page:
    return Page("invoices", f"page={number}", 200, bytes([65 + number % 26]) * size)


def _committed(engine: Engine, fetch_id: int) -> list[int]:
    """The page numbers of `fetch_id` another connection sees (what a crash would leave)."""
    with tenant_session(engine, TENANT) as session:
        return list(
            session.scalars(
                select(RawPayload.page)
                .where(RawPayload.fetch_id == fetch_id)
                .order_by(RawPayload.page)
            )
        )


def test_pages_are_committed_in_batches_and_the_last_with_the_completion(engine: Engine) -> None:
    lander = PageLander(engine, TENANT, SCOPE, None, batch_pages=2)
    seen = []
    for number in range(5):
        lander(_page(number))
        seen.append(_committed(engine, lander.fetch_id))
    assert seen == [[], [0, 1], [0, 1], [0, 1, 2, 3], [0, 1, 2, 3]]
    with tenant_session(engine, TENANT) as session:
        assert session.scalar(select(RawFetch.completed_at)) is None
    stored = lander.finish()
    assert _committed(engine, lander.fetch_id) == [0, 1, 2, 3, 4]
    assert [s.page for s in stored] == [_page(n) for n in range(5)]
    with tenant_session(engine, TENANT) as session:
        fetch = session.get(RawFetch, lander.fetch_id)
        assert fetch is not None and fetch.completed_at is not None and fetch.pages == 5
        ids = {r.page: r.id for r in session.execute(select(RawPayload.page, RawPayload.id))}
    assert [s.raw_payload_id for s in stored] == [ids[n] for n in range(5)]


def test_a_batch_is_committed_early_when_its_bodies_reach_batch_bytes(engine: Engine) -> None:
    lander = PageLander(engine, TENANT, SCOPE, None, batch_pages=100, batch_bytes=250)
    lander(_page(0, size=100))
    lander(_page(1, size=100))
    assert _committed(engine, lander.fetch_id) == []
    lander(_page(2, size=100))
    assert _committed(engine, lander.fetch_id) == [0, 1, 2]


def test_a_fetch_killed_mid_way_is_superseded_and_the_next_run_fetches(engine: Engine) -> None:
    killed = PageLander(engine, TENANT, SCOPE, None, batch_pages=2)
    for number in range(3):
        killed(_page(number))
    del killed  # the process died: no flush, no finish; the open batch (page 2) is lost
    with tenant_session(engine, TENANT) as session:
        assert session.scalar(select(func.count()).select_from(RawPayload)) == 2
    assert find_cover(engine, TENANT, SCOPE) is None  # an unfinished fetch serves nothing

    calls = 0

    def fetch(on_page: Callable[[Page], None]) -> None:
        nonlocal calls
        calls += 1
        for number in range(3):
            on_page(_page(number))

    first = serve(engine, TENANT, SCOPE, fetch)
    assert not first.replayed and calls == 1 and len(first.pages) == 3
    with tenant_session(engine, TENANT) as session:
        rows = session.execute(
            select(RawFetch.id, RawFetch.completed_at, RawFetch.superseded_at).order_by(RawFetch.id)
        ).all()
    assert [(r.completed_at is None, r.superseded_at is None) for r in rows] == [
        (True, False),  # the killed fetch: unfinished, now superseded
        (False, True),  # the new one: complete
    ]
    again = serve(engine, TENANT, SCOPE, fetch)
    assert again.replayed and calls == 1
    assert [f.fetch_id for f in again.fetches] == [rows[1].id]
    assert [s.page for s in again.pages] == [_page(n) for n in range(3)]


def test_a_provider_error_commits_the_pages_taken_before_it(engine: Engine) -> None:
    def broken(on_page: Callable[[Page], None]) -> None:
        for number in range(3):
            on_page(_page(number))
        raise ConnectionError("provider went away")

    with pytest.raises(ConnectionError, match="provider went away"):
        serve(engine, TENANT, SCOPE, broken)
    with tenant_session(engine, TENANT) as session:
        fetch_id, completed = session.execute(select(RawFetch.id, RawFetch.completed_at)).one()
    assert completed is None and _committed(engine, fetch_id) == [0, 1, 2]
