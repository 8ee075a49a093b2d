"""The `reconcile` flow: one tenant, one window — extract every source (concurrently), then
reconcile, then (where the tenant turned it on) apply to WHMCS, and record the run."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from typing import TYPE_CHECKING

from prefect import flow
from prefect.events import emit_event
from prefect.runtime import flow_run

from connectors.runtime import Runtime
from flows.outcome import ApplyFigures, RunOutcome, SourceFigures
from recon.audit import anchor_for, resolve_chain_key
from recon.db.tenancy import admin_session
from recon.errors import ConfigError
from recon.locks import tenant_lock
from recon.redaction import redact_exceptions
from recon.tenant_admin import active_tenant
from recon.tenants import parse_settings

if TYPE_CHECKING:
    from tasks.extract import SourceResult

RUN_COMPLETED = "recon.run.completed"
log = logging.getLogger("recon.flow")


def _sources(results: list[SourceResult]) -> dict[str, SourceFigures]:
    return {
        f"{r.source.kind}:{r.source.account_ref}": SourceFigures(
            pages=r.pages, replayed=r.replayed, loaded=r.loaded, quarantined=r.quarantined
        )
        for r in results
    }


@flow(
    name="reconcile",
    flow_run_name="reconcile {tenant} {date_from}..{date_to}",
    validate_parameters=True,
)
@redact_exceptions
def reconcile(
    tenant: str,
    date_from: dt.date,
    date_to: dt.date,
    sources: list[str] | None = None,
    refetch: bool = False,
    apply: bool | None = None,
) -> RunOutcome:
    """Reconcile `tenant` over [date_from, date_to]; the same window twice gives the same tables."""
    if date_from > date_to:
        raise ConfigError(f"the window starts {date_from} after it ends {date_to}")
    # The task layer (pandas, numpy, the providers' SDKs) loads when a run starts, not when the
    # flow is imported: the deployments, the CLI and the flows that call this one import this
    # module for the flow object alone.
    from connectors.whmcs import whmcs_client_for
    from tasks.extract import SourceContext, linked_bank_accounts, plan_sources
    from tasks.prefect_tasks import apply_task, extract_task, reconcile_task
    from tasks.reconcile import matching_config
    from tasks.runs import finish_run, mark_crashed_runs, start_run

    started = time.perf_counter()
    runtime = Runtime()
    engine = runtime.checked_engine()
    chain_key = resolve_chain_key(runtime.secrets)  # a run without the audit key never starts
    with admin_session(engine) as session:
        settings = parse_settings(active_tenant(session, tenant).settings)
    ctx = SourceContext(engine, tenant, settings, runtime.secrets)
    linked = linked_bank_accounts(engine, tenant)
    plan = plan_sources(settings, set(sources) if sources else None, linked)
    window = (date_from, date_to)
    with tenant_lock(engine, tenant):
        if crashed := mark_crashed_runs(engine, tenant):
            log.warning("closed %d earlier run(s) of %s that stopped half-way", crashed, tenant)
        run_id = start_run(
            engine, tenant, window, [s.kind for s in plan], flow_run_id=flow_run.get_id()
        )
        try:
            clock = time.perf_counter()
            futures = [extract_task.submit(ctx, s, window, run_id, refetch) for s in plan]
            results = [f.result() for f in futures]
            extracted = time.perf_counter() - clock
            summary = reconcile_task(ctx, window, run_id, matching_config(settings))
            applied: ApplyFigures | None = None
            if apply if apply is not None else settings.auto_apply:
                with whmcs_client_for(tenant, settings.whmcs, runtime.secrets) as writer:
                    report = apply_task(ctx, writer)
                applied = ApplyFigures(
                    applied=report.applied,
                    already_in_whmcs=report.already_in_whmcs,
                    failed=len(report.failed),
                )
        except Exception as exc:
            finish_run(engine, tenant, run_id, status="failed", error=str(exc)[:2000])
            raise
        # seconds per stage (bench/pipeline_bench.py reads them from the runs table)
        timings = {
            "extract": round(extracted, 3),
            "sources": {f"{r.source.kind}:{r.source.account_ref}": r.timings for r in results},
            "reconcile": summary.timings,
            "flow": round(time.perf_counter() - started, 3),
        }
        outcome = RunOutcome(
            run_id=run_id,
            sources=_sources(results),
            transactions=summary.transactions,
            allocations_auto=summary.allocations_auto,
            allocations_review=summary.allocations_review,
            exceptions=summary.exceptions,
            allocations_added=summary.allocations_added,
            allocations_reversed=summary.allocations_reversed,
            exceptions_opened=summary.exceptions_opened,
            exceptions_closed=summary.exceptions_closed,
            allocated_minor=dict(summary.allocated_minor),
            audit_anchor={},
            apply=applied,
            timings=timings,
        )
        finish_run(
            engine,
            tenant,
            run_id,
            status="completed",
            counts=outcome.counts(),
            sums={"allocated_minor": summary.allocated_minor},
        )
        # The chain's head after this run, signed: kept outside the database by whoever keeps
        # the summary (and in Prefect's event log), it shows later deletions of these entries.
        anchor = anchor_for(engine, tenant, chain_key).to_dict()
        outcome = dataclasses.replace(outcome, audit_anchor=anchor)
    emit_event(
        event=RUN_COMPLETED,
        resource={"prefect.resource.id": f"recon.tenant.{tenant}", "prefect.resource.name": tenant},
        payload={
            "run_id": run_id,
            "date_from": date_from.isoformat(),
            "date_to": date_to.isoformat(),
            "audit_anchor": anchor,
        },
    )
    return outcome
