"""The `backfill` flow: a long range split into periods, run in order, resumable.

A period whose run completed with the same sources is skipped when the backfill is started
again, so a backfill that failed half-way picks up where it stopped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from sqlalchemy import select

from flows.reconcile import reconcile
from recon.db.models import Run
from recon.db.tenancy import tenant_session
from recon.errors import ConfigError
from recon.runtime import Runtime


def periods(date_from: dt.date, date_to: dt.date, days: int) -> list[tuple[dt.date, dt.date]]:
    """[date_from, date_to] cut into consecutive periods of at most `days` days."""
    if days < 1:
        raise ConfigError("a backfill period is at least one day")
    if date_from > date_to:
        raise ConfigError(f"the range starts {date_from} after it ends {date_to}")
    cuts = []
    start = date_from
    while start <= date_to:
        end = min(start + dt.timedelta(days=days - 1), date_to)
        cuts.append((start, end))
        start = end + dt.timedelta(days=1)
    return cuts


def completed(tenant: str, window: tuple[dt.date, dt.date], sources: list[str] | None) -> bool:
    """Whether a run of exactly this window (and these sources) completed before."""
    with tenant_session(Runtime().checked_engine(), tenant) as session:
        runs = session.scalars(
            select(Run).where(
                Run.window_from == window[0],
                Run.window_to == window[1],
                Run.status == "completed",
            )
        ).all()
    return any(sources is None or sorted(set(r.sources)) == sorted(set(sources)) for r in runs)


@flow(name="backfill")
def backfill(
    tenant: str,
    date_from: dt.date,
    date_to: dt.date,
    period_days: int = 7,
    sources: list[str] | None = None,
    refetch: bool = False,
) -> dict[str, Any]:
    """Reconcile [date_from, date_to] period by period, skipping periods already done."""
    done, ran = 0, 0
    for window in periods(date_from, date_to, period_days):
        if not refetch and completed(tenant, window, sources):
            done += 1
            continue
        reconcile(
            tenant=tenant, date_from=window[0], date_to=window[1], sources=sources, refetch=refetch
        )
        ran += 1
    return {"periods": done + ran, "skipped": done, "ran": ran}
