"""Read-only views of the `runs` table for people and scripts (`recon runs list|show`).

A run still marked `running` is *stuck* when nobody holds the tenant's writer lock (every run
writes under it, and the lock dies with its process, so the row's writer is gone) or when it
started longer ago than `STUCK_AFTER`. Nothing here changes a row: closing stuck runs is
`tasks.runs.mark_crashed_runs`'s job, done by the next run or the `on-run-crashed` flow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from recon.db.base import utcnow
from recon.db.models import Run
from recon.db.tenancy import tenant_session
from recon.errors import ConfigError, NotFoundError
from recon.locks import TenantBusyError, tenant_lock

STUCK_AFTER = dt.timedelta(hours=6)
STATUSES = ("running", "completed", "failed", "crashed", "stuck")


@dataclass(frozen=True)
class RunRecord:
    """One run as a person or a script sees it."""

    id: str
    tenant_id: str
    kind: str
    status: str
    stuck: bool
    window_from: dt.date
    window_to: dt.date
    sources: list[str]
    started_at: dt.datetime
    finished_at: dt.datetime | None
    duration_seconds: float | None
    counts: dict[str, Any] = field(default_factory=dict)
    sums: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    flow_run_id: str | None = None

    @property
    def shown_status(self) -> str:
        """`stuck` for a running row whose writer is gone, else the stored status."""
        return "stuck" if self.stuck else self.status

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (dates ISO 8601, duration in seconds)."""
        return {
            "id": self.id,
            "tenant": self.tenant_id,
            "kind": self.kind,
            "status": self.shown_status,
            "stored_status": self.status,
            "stuck": self.stuck,
            "window_from": self.window_from.isoformat(),
            "window_to": self.window_to.isoformat(),
            "sources": list(self.sources),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_seconds": self.duration_seconds,
            "counts": self.counts,
            "sums": self.sums,
            "error": self.error,
            "flow_run_id": self.flow_run_id,
        }


def writer_alive(engine: Engine, tenant_id: str) -> bool:
    """Whether some process holds the tenant's writer lock right now (probed, then released)."""
    try:
        with tenant_lock(engine, tenant_id):
            return False
    except TenantBusyError:
        return True


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes for what was stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _record(run: Run, *, writer: bool, now: dt.datetime) -> RunRecord:
    started = _aware(run.started_at)
    finished = _aware(run.finished_at) if run.finished_at else None
    running = run.status == "running"
    stuck = running and (not writer or now - started > STUCK_AFTER)
    end = finished or (now if running else None)
    return RunRecord(
        id=run.id,
        tenant_id=run.tenant_id,
        kind=run.kind,
        status=run.status,
        stuck=stuck,
        window_from=run.window_from,
        window_to=run.window_to,
        sources=list(run.sources or []),
        started_at=started,
        finished_at=finished,
        duration_seconds=round((end - started).total_seconds(), 3) if end else None,
        counts=dict(run.counts or {}),
        sums=dict(run.sums or {}),
        error=run.error,
        flow_run_id=run.flow_run_id,
    )


def _records(engine: Engine, tenant_id: str, runs: list[Run]) -> list[RunRecord]:
    writer = any(r.status == "running" for r in runs) and writer_alive(engine, tenant_id)
    now = utcnow()
    return [_record(run, writer=writer, now=now) for run in runs]


def list_runs(
    engine: Engine, tenant_id: str, *, status: str | None = None, limit: int = 20
) -> list[RunRecord]:
    """The tenant's latest runs, newest first; `status` may be `stuck` (running, writer gone)."""
    if status is not None and status not in STATUSES:
        raise ConfigError(f"--status {status!r} is not one of {', '.join(STATUSES)}")
    if limit < 1:
        raise ConfigError("--limit must be at least 1")
    stored = "running" if status == "stuck" else status
    with tenant_session(engine, tenant_id) as session:
        query = select(Run).order_by(Run.started_at.desc(), Run.id.desc())
        if stored is not None:
            query = query.where(Run.status == stored)
        if status != "stuck":
            query = query.limit(limit)
        runs = list(session.scalars(query))
    records = _records(engine, tenant_id, runs)
    if status == "stuck":
        records = [r for r in records if r.stuck][:limit]
    elif status == "running":
        records = [r for r in records if not r.stuck]
    return records


def _find(session: Session, run_id: str, tenant_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is not None:
        return run
    if len(run_id) >= 4:  # a unique prefix, as `runs list` prints ids shortened
        matches = list(
            session.scalars(select(Run).where(Run.id.startswith(run_id, autoescape=True)).limit(2))
        )
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ConfigError(f"run id {run_id!r} is ambiguous; give more of it")
    raise NotFoundError(
        f"no run {run_id!r} for tenant {tenant_id!r}; `recon runs list --tenant {tenant_id}` "
        "shows its runs"
    )


def get_run(engine: Engine, tenant_id: str, run_id: str) -> RunRecord:
    """One run of the tenant by id (or a unique prefix of at least 4 characters)."""
    with tenant_session(engine, tenant_id) as session:
        run = _find(session, run_id, tenant_id)
    return _records(engine, tenant_id, [run])[0]


def completed_windows(
    engine: Engine,
    tenant_id: str,
    windows: list[tuple[dt.date, dt.date]],
    *,
    sources: list[str] | None = None,
    since: dt.datetime | None = None,
) -> set[tuple[dt.date, dt.date]]:
    """Which of `windows` have a completed run (with exactly these sources, when given;
    finished at or after `since`, when given): a backfill's progress."""
    if not windows:
        return set()
    wanted = set(windows)
    query = select(Run.window_from, Run.window_to, Run.sources, Run.finished_at).where(
        Run.status == "completed",
        Run.window_from >= min(w[0] for w in windows),
        Run.window_to <= max(w[1] for w in windows),
    )
    with tenant_session(engine, tenant_id) as session:
        rows = session.execute(query).all()
    found: set[tuple[dt.date, dt.date]] = set()
    for window_from, window_to, run_sources, finished_at in rows:
        if (window_from, window_to) not in wanted:
            continue
        if sources is not None and sorted(set(run_sources or [])) != sorted(set(sources)):
            continue
        if since is not None and (finished_at is None or _aware(finished_at) < since):
            continue
        found.add((window_from, window_to))
    return found
