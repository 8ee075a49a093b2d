"""The pipeline steps as Prefect tasks: I/O steps retry transient failures with jittered
backoff, pure steps never retry, and nothing that takes a client or a session is cached."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun

from connectors.http import ProviderRateLimitedError, ProviderUnavailableError
from recon.matching.config import MatchConfig
from recon.redaction import redact_exceptions
from tasks.apply import ApplyReport, PaymentWriter, apply_payments
from tasks.extract import Source, SourceContext, SourceResult, extract_source
from tasks.reconcile import ReconcileSummary, reconcile_window

TRANSIENT = (ProviderUnavailableError, ProviderRateLimitedError, ConnectionError, TimeoutError)


def retry_transient(_task: Task[Any, Any], _task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only what may pass by itself: an unavailable or rate-limited provider."""
    try:
        state.result()
    except TRANSIENT:
        return True
    except Exception:
        return False
    return False


@task(
    name="extract-source",
    retries=1,
    retry_delay_seconds=[20],
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recon-io"],
)
@redact_exceptions
def extract_task(
    ctx: SourceContext,
    source: Source,
    window: tuple[dt.date, dt.date],
    run_id: str,
    refetch: bool,
) -> SourceResult:
    """Land or replay, validate and load one source."""
    return extract_source(ctx, source, window, run_id=run_id, refetch=refetch)


@task(name="reconcile-window", cache_policy=NO_CACHE)
@redact_exceptions
def reconcile_task(
    ctx: SourceContext, window: tuple[dt.date, dt.date], run_id: str, config: MatchConfig
) -> ReconcileSummary:
    """Run the matching engine on the window and store its results (pure: no retries)."""
    return reconcile_window(ctx.engine, ctx.tenant_id, window, run_id=run_id, config=config)


@task(
    name="apply-to-whmcs",
    retries=1,
    retry_delay_seconds=[30],
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recon-io"],
)
@redact_exceptions
def apply_task(ctx: SourceContext, writer: PaymentWriter, *, dry_run: bool = False) -> ApplyReport:
    """Record the automatic allocations in WHMCS, exactly once each."""
    return apply_payments(
        ctx.engine,
        ctx.tenant_id,
        writer,
        default_gateway=ctx.settings.whmcs.gateway,
        dry_run=dry_run,
        actor="reconcile-flow",
    )
