"""The `runs` table: one row per reconciliation run, opened at the start, closed at the end.

Closing a run (completed, failed or found crashed) appends its audit entry in the same
transaction: its window, counts and sums, and the size and SHA-256 digest of the tenant's live
allocation set as the run left it (`tasks.decisions.allocation_digest`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from recon import audit
from recon.db.base import utcnow
from recon.db.models import Run
from recon.db.tenancy import tenant_session
from tasks.decisions import ENGINE, allocation_digest


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
            _audit_run(session, run)
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
        _audit_run(session, run)


def _audit_run(session: Session, run: Run) -> None:
    """The run's audit entry: outcome, counts and the digest of the live allocation set."""
    live, digest = allocation_digest(session)
    audit.append(
        session,
        actor=ENGINE,
        action=f"run.{run.status}",
        entity="run",
        entity_id=run.id,
        details={
            "kind": run.kind,
            "window_from": run.window_from.isoformat(),
            "window_to": run.window_to.isoformat(),
            "sources": list(run.sources or []),
            "status": run.status,
            "counts": run.counts or {},
            "sums": run.sums or {},
            "error": run.error,
            "live_allocations": live,
            "allocation_digest": digest,
        },
    )
