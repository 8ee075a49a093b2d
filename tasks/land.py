"""Land raw first: every provider response page is stored verbatim, with its hash, before it
is parsed; a re-run replays the stored pages instead of calling the provider again.

Pages are committed in batches as they arrive (every `BATCH_PAGES` pages or `BATCH_BYTES` of
bodies, each batch one short transaction, never one held open across a provider's call), and the
last batch in the transaction that marks the fetch complete. A fetch only counts for replay once
its last page landed (`completed_at`); one that never completes (killed, or the provider failed
half-way) is marked superseded as soon as a complete fetch covers its window, and is never
replayed, so its pages are kept as evidence but never counted. A provider's error commits the
pages received before it (the evidence); a process killed mid-fetch loses at most the pages of
its open batch, which belonged to a fetch that could never be replayed anyway.

A window is served from the store when the complete fetches together cover every one of its days
(`find_cover`): one longer fetch, or several shorter ones. The caller cuts what they hold to the
window (`tasks.load.restrict`), so a replay serves the window and nothing else.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from connectors.pages import Page
from recon.db.base import utcnow
from recon.db.models import RawFetch, RawPayload
from recon.db.tenancy import tenant_session

BATCH_PAGES = 50
"""Pages landed per transaction (one commit, one fsync on SQLite, for this many)."""
BATCH_BYTES = 8 * 1024 * 1024
"""A batch is committed early once its bodies reach this many bytes (bounds the memory held)."""


@dataclass(frozen=True)
class StoredPage:
    """A landed page and the id of its row, for lineage from loaded rows back to the raw."""

    raw_payload_id: int
    page: Page


@dataclass(frozen=True)
class FetchScope:
    """What a fetch covers: one dataset of one account of one provider over a window."""

    provider: str
    account_ref: str
    dataset: str
    window_from: dt.date
    window_to: dt.date


class PageLander:
    """Stores pages of one fetch as they arrive, in batches; `finish` lands the last batch and
    marks the fetch complete in one transaction."""

    def __init__(
        self,
        engine: Engine,
        tenant_id: str,
        scope: FetchScope,
        run_id: str | None,
        *,
        batch_pages: int = BATCH_PAGES,
        batch_bytes: int = BATCH_BYTES,
    ):
        self._engine = engine
        self._tenant = tenant_id
        self._scope = scope
        self._batch_pages = max(1, batch_pages)
        self._batch_bytes = batch_bytes
        self._pending: list[Page] = []
        self._pending_bytes = 0
        self.stored: list[StoredPage] = []
        with tenant_session(engine, tenant_id) as session:
            fetch = RawFetch(
                tenant_id=tenant_id,
                provider=scope.provider,
                account_ref=scope.account_ref,
                dataset=scope.dataset,
                window_from=scope.window_from,
                window_to=scope.window_to,
                run_id=run_id,
            )
            session.add(fetch)
            session.flush()
            self.fetch_id = fetch.id

    def __call__(self, page: Page) -> None:
        """Take one page; a full batch is committed in its own transaction."""
        self._pending.append(page)
        self._pending_bytes += len(page.body)
        if len(self._pending) >= self._batch_pages or self._pending_bytes >= self._batch_bytes:
            self.flush()

    def flush(self) -> None:
        """Commit the pages taken since the last batch (nothing when there are none)."""
        if not self._pending:
            return
        with tenant_session(self._engine, self._tenant) as session:
            landed = self._add_pending(session)
        self._landed(landed)

    def finish(self) -> list[StoredPage]:
        """Land the last batch, mark the fetch complete (it may now be replayed), in one
        transaction, and return its pages."""
        with tenant_session(self._engine, self._tenant) as session:
            landed = self._add_pending(session)
            fetch = session.get(RawFetch, self.fetch_id)
            if fetch is None:  # pragma: no cover - the row was written in __init__
                raise RuntimeError(f"raw fetch {self.fetch_id} vanished")
            fetch.pages = len(self.stored) + len(landed)
            fetch.completed_at = utcnow()
        self._landed(landed)
        supersede_unfinished(self._engine, self._tenant, self._scope)
        return list(self.stored)

    def _add_pending(self, session: Session) -> list[StoredPage]:
        rows = [
            RawPayload(
                tenant_id=self._tenant,
                fetch_id=self.fetch_id,
                page=len(self.stored) + number,
                provider=self._scope.provider,
                account_ref=self._scope.account_ref,
                endpoint=page.endpoint,
                request_key=page.request_key,
                status_code=page.status,
                content_sha256=page.sha256,
                body=page.body,
            )
            for number, page in enumerate(self._pending)
        ]
        session.add_all(rows)
        session.flush()
        return [StoredPage(row.id, page) for row, page in zip(rows, self._pending, strict=True)]

    def _landed(self, landed: list[StoredPage]) -> None:
        """The batch is committed: its pages count as stored."""
        self.stored.extend(landed)
        self._pending = []
        self._pending_bytes = 0


def _fetch_into(lander: PageLander, fetch: Fetch) -> None:
    """Run `fetch` into `lander`; when it fails, the pages taken so far are committed first (as
    evidence of the unfinished fetch) and the fetch's error is raised, not the commit's."""
    try:
        fetch(lander)
    except BaseException:
        with contextlib.suppress(Exception):  # the provider's error is the one to report
            lander.flush()
        raise


def find_replay(engine: Engine, tenant_id: str, scope: FetchScope) -> int | None:
    """The newest complete fetch of the same dataset and account whose window covers `scope`."""
    with tenant_session(engine, tenant_id) as session:
        return session.scalar(
            select(RawFetch.id)
            .where(
                RawFetch.provider == scope.provider,
                RawFetch.account_ref == scope.account_ref,
                RawFetch.dataset == scope.dataset,
                RawFetch.window_from <= scope.window_from,
                RawFetch.window_to >= scope.window_to,
                RawFetch.completed_at.is_not(None),
            )
            .order_by(RawFetch.completed_at.desc(), RawFetch.id.desc())
            .limit(1)
        )


def supersede_unfinished(engine: Engine, tenant_id: str, scope: FetchScope) -> int:
    """Mark the unfinished fetches of `scope`'s dataset whose window it covers as superseded
    (the complete fetch of `scope` now holds what they were landing); returns how many."""
    with tenant_session(engine, tenant_id) as session:
        result = session.execute(
            update(RawFetch)
            .where(
                RawFetch.provider == scope.provider,
                RawFetch.account_ref == scope.account_ref,
                RawFetch.dataset == scope.dataset,
                RawFetch.window_from >= scope.window_from,
                RawFetch.window_to <= scope.window_to,
                RawFetch.completed_at.is_(None),
                RawFetch.superseded_at.is_(None),
            )
            .values(superseded_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class StoredFetch:
    """A complete fetch: its id and the window it was asked for."""

    fetch_id: int
    window_from: dt.date
    window_to: dt.date

    def holds(self, day: dt.date) -> bool:
        """Whether `day` lies in the fetch's window."""
        return self.window_from <= day <= self.window_to


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def find_cover(
    engine: Engine, tenant_id: str, scope: FetchScope, *, margin_days: int = 0
) -> list[StoredFetch] | None:
    """The complete fetches that serve `scope` from the store, oldest first, or None when some
    day of the window is in no complete fetch (the window must be fetched).

    For every day of the window widened by `margin_days` on each side, the newest complete fetch
    whose window holds that day is taken; a day of the margin that no fetch holds is no reason
    to fetch (a fresh fetch of the window would not hold it either)."""
    first = scope.window_from - dt.timedelta(days=margin_days)
    last = scope.window_to + dt.timedelta(days=margin_days)
    with tenant_session(engine, tenant_id) as session:
        rows = session.execute(
            select(RawFetch.id, RawFetch.window_from, RawFetch.window_to)
            .where(
                RawFetch.provider == scope.provider,
                RawFetch.account_ref == scope.account_ref,
                RawFetch.dataset == scope.dataset,
                RawFetch.window_from <= last,
                RawFetch.window_to >= first,
                RawFetch.completed_at.is_not(None),
            )
            .order_by(RawFetch.completed_at.desc(), RawFetch.id.desc())
        ).all()
    fetches = [StoredFetch(r.id, r.window_from, r.window_to) for r in rows]
    chosen: dict[int, StoredFetch] = {}
    for day in _days(first, last):
        newest = next((f for f in fetches if f.holds(day)), None)
        if newest is None:
            if scope.window_from <= day <= scope.window_to:
                return None
            continue
        chosen[newest.fetch_id] = newest
    order = {f.fetch_id: n for n, f in enumerate(fetches)}
    return sorted(chosen.values(), key=lambda f: -order[f.fetch_id])


def stored_pages(engine: Engine, tenant_id: str, fetch_id: int) -> list[StoredPage]:
    """The pages of a fetch, in the order they were fetched."""
    with tenant_session(engine, tenant_id) as session:
        rows = session.scalars(
            select(RawPayload).where(RawPayload.fetch_id == fetch_id).order_by(RawPayload.page)
        ).all()
        return [
            StoredPage(r.id, Page(r.endpoint, r.request_key, r.status_code, bytes(r.body)))
            for r in rows
        ]


Fetch = Callable[[Callable[[Page], None]], None]
"""A connector call that hands every page it receives to the callback, in order."""


@dataclass(frozen=True)
class LandedPages:
    """The pages a window's parse reads, and whether they came from the provider or the store."""

    fetch_id: int
    pages: list[StoredPage]
    replayed: bool


def land_or_replay(
    engine: Engine,
    tenant_id: str,
    scope: FetchScope,
    fetch: Fetch,
    *,
    refetch: bool = False,
    run_id: str | None = None,
) -> LandedPages:
    """Replay the stored pages that cover `scope`, or fetch (landing every page) if there are
    none or `refetch` is asked for. A fetch that fails leaves an incomplete fetch that is never
    replayed; the next run fetches again."""
    if not refetch:
        replay = find_replay(engine, tenant_id, scope)
        if replay is not None:
            return LandedPages(replay, stored_pages(engine, tenant_id, replay), replayed=True)
    lander = PageLander(engine, tenant_id, scope, run_id)
    _fetch_into(lander, fetch)
    return LandedPages(lander.fetch_id, lander.finish(), replayed=False)


@dataclass(frozen=True)
class ServedPages:
    """What a window's parse reads: the pages of one fresh fetch, or of the stored fetches
    that cover the window (oldest first, so that a later page of the same record wins)."""

    fetches: list[StoredFetch]
    pages: list[StoredPage]
    replayed: bool


def serve(
    engine: Engine,
    tenant_id: str,
    scope: FetchScope,
    fetch: Fetch,
    *,
    refetch: bool = False,
    run_id: str | None = None,
    margin_days: int = 0,
    newest_only: bool = False,
) -> ServedPages:
    """Serve `scope` from the complete fetches that cover it, or fetch it (landing every page)
    when they do not or `refetch` is asked for. `newest_only` serves just the newest covering
    fetch (for datasets that are whole snapshots rather than windows, such as WHMCS's ledger)."""
    if not refetch:
        cover = find_cover(engine, tenant_id, scope, margin_days=margin_days)
        if cover:
            if newest_only:
                cover = cover[-1:]
            pages = [p for f in cover for p in stored_pages(engine, tenant_id, f.fetch_id)]
            return ServedPages(cover, pages, replayed=True)
    lander = PageLander(engine, tenant_id, scope, run_id)
    _fetch_into(lander, fetch)
    stored = lander.finish()
    landed = StoredFetch(lander.fetch_id, scope.window_from, scope.window_to)
    return ServedPages([landed], stored, replayed=False)


def page_bodies(pages: Iterable[StoredPage]) -> list[bytes]:
    """Just the bodies, for parsers that need nothing else."""
    return [stored.page.body for stored in pages]
