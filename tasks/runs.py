"""The `runs` table: one row per reconciliation run, opened at the start, closed at the end."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Engine, select

from recon.db.base import utcnow
from recon.db.models import Run
from recon.db.tenancy import tenant_session


def start_run(
    engine: Engine,
    tenant_id: str,
    window: tuple[dt.date, dt.date],
    sources: list[str],
    *,
    flow_run_id: str | None = None,
    kind: str = "reconcile",
) -> str:
    """Record a run as started; returns its id."""
    run_id = str(uuid.uuid4())
    with tenant_session(engine, tenant_id) as session:
        session.add(
            Run(
                id=run_id,
                tenant_id=tenant_id,
                flow_run_id=flow_run_id,
                kind=kind,
                window_from=window[0],
                window_to=window[1],
                sources=sources,
                status="running",
            )
        )
    return run_id


def mark_crashed_runs(engine: Engine, tenant_id: str) -> int:
    """Close the tenant's runs still marked running as `crashed`; returns how many.

    Call it only while holding the tenant's writer lock: holding it proves that whoever wrote
    those rows is gone (the lock dies with its process).
    """
    with tenant_session(engine, tenant_id) as session:
        stale = session.scalars(select(Run).where(Run.status == "running")).all()
        for run in stale:
            run.status = "crashed"
            run.finished_at = utcnow()
            run.error = "the process running it stopped before it finished"
        return len(stale)


def finish_run(
    engine: Engine,
    tenant_id: str,
    run_id: str,
    *,
    status: str,
    counts: dict[str, Any] | None = None,
    sums: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Close a run with its outcome (in its own transaction, so a failure is recorded too)."""
    with tenant_session(engine, tenant_id) as session:
        run = session.get(Run, run_id)
        if run is None:  # pragma: no cover - start_run wrote it
            raise RuntimeError(f"run {run_id} vanished")
        run.status = status
        run.finished_at = utcnow()
        run.counts = counts or {}
        run.sums = sums or {}
        run.error = error
