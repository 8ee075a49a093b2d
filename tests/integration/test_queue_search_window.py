"""The queue's free-text search in queue order reads a prefix of the queue by index first
(`recon.review.queue.SEARCH_WINDOW`) and scans after it only when the prefix holds too few
matches: every page, walked by cursor, equals the one-query definition, on SQLite and
PostgreSQL, whether the matches lie inside the prefix, after it, or across it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from recon.db.models import ReconException
from recon.db.tenancy import tenant_session
from recon.review import queue
from recon.review.views import QueueCursor, QueueFilter
from tests.people import backend_with_finance

T, FIN = "acme", "fin@acme.test"
NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Tenant acme with 40 exceptions (5 created at the same moment, so ties break by id)."""
    engine = backend_with_finance(request, T, FIN)
    with tenant_session(engine, T) as session:
        for n in range(40):
            payer = ("widgets plc", "jane doe", "acme hosting")[n % 3] if n != 37 else "rare co"
            session.add(
                ReconException(
                    tenant_id=T,
                    exception_key=f"{n:064x}",
                    kind="unmatched_payment",
                    detail="-",
                    status="open" if n % 7 else "resolved",
                    payer=payer,
                    search_text=f"{payer}\nref {n}",
                    created_at=NOW - dt.timedelta(days=40 - n if n > 4 else 50),
                )
            )
    yield engine


def _expected(engine: Engine, search: str) -> list[int]:
    with tenant_session(engine, T) as session:
        like = ReconException.search_text.like(f"%{search}%")
        return list(
            session.scalars(
                select(ReconException.id)
                .where(ReconException.status == "open", like)
                .order_by(ReconException.created_at, ReconException.id)
            )
        )


def _walk(engine: Engine, search: str, limit: int) -> list[int]:
    ids: list[int] = []
    cursor: QueueCursor | None = None
    while True:
        page = queue.list_exceptions(
            engine, FIN, T, QueueFilter(search=search), after=cursor, limit=limit, now=NOW
        )
        ids += [item.id for item in page.items]
        if page.next is None:
            return ids
        cursor = page.next


@pytest.mark.parametrize("window", [1, 4, 10, 1000])
def test_search_pages_equal_the_one_query_definition(
    app: Engine, window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "SEARCH_WINDOW", window)
    for search in ("widgets", "jane", "rare", "ref 3", "no such payer"):
        expected = _expected(app, search)
        for limit in (1, 3, 50):
            assert _walk(app, search, limit) == expected, (search, limit)
    assert _expected(app, "rare") and not _expected(app, "no such payer")
