"""The `backfill` flow: a long range split into periods, run in order, resumable.

Each source's range is fetched ONCE (nothing at all when the store already covers it), then every
period is served from the store: a bank account with 4 GoCardless calls a day spends one of
them on a backfill of any length, `refetch` included. A period whose run completed with the same
sources is skipped when the backfill is started again, so a backfill that failed half-way picks
up where it stopped.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from prefect import flow
from sqlalchemy import select

from connectors.runtime import Runtime
from flows.reconcile import reconcile
from recon.db.models import Run
from recon.db.tenancy import admin_session, tenant_session
from recon.errors import ConfigError
from recon.locks import tenant_lock
from recon.redaction import redact_exceptions
from recon.tenant_admin import active_tenant
from recon.tenants import parse_settings
from tasks.extract import SourceContext, land_source, linked_bank_accounts, plan_sources

log = logging.getLogger("recon.flow")

Window = tuple[dt.date, dt.date]


@dataclass(frozen=True)
class BackfillOutcome:
    """What one backfill did: its periods, those skipped as already done, those run, and the
    sources it fetched (the others replayed what the store held)."""

    periods: int
    skipped: int
    ran: int
    windows_run: tuple[Window, ...] = ()
    fetched: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON form (dates as ISO strings), for `--json` and events."""
        return {
            "periods": self.periods,
            "skipped": self.skipped,
            "ran": self.ran,
            "windows_run": [[a.isoformat(), b.isoformat()] for a, b in self.windows_run],
            "fetched": list(self.fetched),
        }


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


def land_range(
    tenant: str, window: tuple[dt.date, dt.date], sources: list[str] | None, refetch: bool
) -> dict[str, bool]:
    """Fetch each source's whole range once, unless the store covers it (and no refetch is
    asked for); returns, per source, whether it was fetched."""
    runtime = Runtime()
    engine = runtime.checked_engine()
    with admin_session(engine) as session:
        settings = parse_settings(active_tenant(session, tenant).settings)
    ctx = SourceContext(engine, tenant, settings, runtime.secrets)
    fetched: dict[str, bool] = {}
    linked = linked_bank_accounts(engine, tenant)
    with tenant_lock(engine, tenant):
        for source in plan_sources(settings, set(sources) if sources else None, linked):
            served = land_source(ctx, source, window, refetch=refetch)
            fetched[f"{source.kind}:{source.account_ref}"] = not served.replayed
    log.info("backfill of %s %s..%s: %s", tenant, window[0], window[1], fetched)
    return fetched


@flow(name="backfill")
@redact_exceptions
def backfill(
    tenant: str,
    date_from: dt.date,
    date_to: dt.date,
    period_days: int = 7,
    sources: list[str] | None = None,
    refetch: bool = False,
) -> BackfillOutcome:
    """Reconcile [date_from, date_to] period by period, skipping periods already done; each
    source's range is fetched at most once and the periods replay it."""
    cuts = periods(date_from, date_to, period_days)
    todo = [w for w in cuts if refetch or not completed(tenant, w, sources)]
    fetched: dict[str, bool] = {}
    if todo:
        fetched = land_range(tenant, (todo[0][0], todo[-1][1]), sources, refetch)
    for window in todo:
        reconcile(tenant=tenant, date_from=window[0], date_to=window[1], sources=sources)
    return BackfillOutcome(
        periods=len(cuts),
        skipped=len(cuts) - len(todo),
        ran=len(todo),
        windows_run=tuple(todo),
        fetched=tuple(sorted(name for name, was_fetched in fetched.items() if was_fetched)),
    )
