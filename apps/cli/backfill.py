"""`recon backfill`: reconcile a date range period by period, resumably.

Without `PREFECT_API_URL` the `backfill` flow runs here (on Prefect's guarded temporary API) with a
progress bar fed from the `runs` table; with it, the command starts a flow run of the `backfill`
deployment (prefect.yaml) with the same parameters and, unless `--no-wait`, waits for its end.
Either way a period whose run already completed is skipped, so running the same command again
after a failure picks up where it stopped.
"""

from __future__ import annotations

import datetime as dt
import threading
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from apps.cli.context import console, runtime
from apps.cli.run import parse_day, run_flow
from recon.errors import ConfigError, ReconError

if TYPE_CHECKING:
    from flows.backfill import BackfillOutcome

DEPLOYMENT = "backfill/backfill"  # flow name / deployment name, as in prefect.yaml


class Period(StrEnum):
    """How long each run of the backfill is."""

    day = "day"
    week = "week"
    month = "month"


PERIOD_DAYS = {Period.day: 1, Period.week: 7, Period.month: 30}


class DeploymentRunError(ReconError):
    """The deployment's flow run did not complete."""

    exit_code = 1


def deployment_parameters(
    tenant: str,
    start: dt.date,
    end: dt.date,
    period_days: int,
    sources: list[str] | None,
    refetch: bool,
) -> dict[str, Any]:
    """The `backfill` flow's parameters, JSON-ready, exactly as its signature names them."""
    return {
        "tenant": tenant,
        "date_from": start.isoformat(),
        "date_to": end.isoformat(),
        "period_days": period_days,
        "sources": sources,
        "refetch": refetch,
    }


def backfill_command(
    tenant: Annotated[str, typer.Option(help="The tenant's id.")],
    date_from: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    date_to: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD.")],
    period: Annotated[
        Period, typer.Option(help="Length of each run: day, week or month (30 days).")
    ] = Period.week,
    source: Annotated[
        list[str] | None,
        typer.Option(help="Only these sources: whmcs, bank, stripe, gocardless (repeat)."),
    ] = None,
    refetch: Annotated[
        bool, typer.Option(help="Call the providers again and rerun periods already done.")
    ] = False,
    wait: Annotated[
        bool, typer.Option(help="With PREFECT_API_URL: wait for the deployment's run to end.")
    ] = True,
) -> None:
    """Reconcile a long range as consecutive runs, skipping periods already done."""
    start, end = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    if start > end:
        raise ConfigError(f"--from {start} is after --to {end}")
    from recon.db.tenancy import admin_session
    from recon.tenant_admin import active_tenant

    rt = runtime()
    with admin_session(rt.checked_engine()) as session:
        active_tenant(session, tenant)
    days = PERIOD_DAYS[period]
    sources = source or None
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        _through_deployment(deployment_parameters(tenant, start, end, days, sources, refetch), wait)
        return
    from recon.audit import resolve_chain_key

    resolve_chain_key(rt.secrets)  # stop before Prefect starts when the audit key is missing
    _locally(tenant, start, end, days, sources, refetch)


def _locally(
    tenant: str,
    start: dt.date,
    end: dt.date,
    days: int,
    sources: list[str] | None,
    refetch: bool,
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from apps.prefect_server import local_prefect_api
    from flows.backfill import backfill, periods
    from recon.db.base import utcnow
    from tasks.run_history import completed_windows

    engine = runtime().checked_engine()
    cuts = periods(start, end, days)
    already = set() if refetch else completed_windows(engine, tenant, cuts, sources=sources)
    began = utcnow()

    def done() -> int:
        fresh = completed_windows(engine, tenant, cuts, sources=sources, since=began)
        return len(already | fresh)

    local_prefect_api()
    progress = Progress(
        TextColumn(f"backfill {tenant} {start}..{end}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("periods"),
        TimeElapsedColumn(),
        console=console,
    )
    stop = threading.Event()
    with progress:
        bar = progress.add_task("periods", total=len(cuts), completed=len(already))

        def poll() -> None:
            while not stop.wait(1.0):
                progress.update(bar, completed=done())

        poller = threading.Thread(target=poll, name="backfill-progress", daemon=True)
        poller.start()
        try:
            result = run_flow(
                backfill,
                tenant=tenant,
                date_from=start,
                date_to=end,
                period_days=days,
                sources=sources,
                refetch=refetch,
            )
        finally:
            stop.set()
            poller.join()
            progress.update(bar, completed=done())
    _print_result(result)


def _print_result(result: BackfillOutcome) -> None:
    console.print(
        f"backfill done: {result.periods} period(s), {result.ran} run, {result.skipped} already "
        "done and skipped; `recon runs list` shows them"
    )


def _through_deployment(parameters: dict[str, Any], wait: bool) -> None:
    import httpx
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        with console.status(f"backfill through deployment {DEPLOYMENT}", spinner="dots"):
            flow_run: Any = run_deployment(
                name=DEPLOYMENT, parameters=parameters, timeout=None if wait else 0
            )
    except ObjectNotFound:
        raise ConfigError(
            f"PREFECT_API_URL's server has no deployment {DEPLOYMENT}; deploy it with "
            "`prefect deploy --all` (prefect.yaml) or unset PREFECT_API_URL to run locally"
        ) from None
    except (httpx.HTTPError, RuntimeError, OSError) as exc:
        raise ConfigError(
            f"cannot reach the Prefect API at PREFECT_API_URL ({type(exc).__name__})"
        ) from None
    state = flow_run.state
    name = state.name if state is not None else "Scheduled"
    console.print(f"flow run {flow_run.name} ({flow_run.id}) of {DEPLOYMENT}: {name}")
    if wait and (state is None or not state.is_completed()):
        raise DeploymentRunError(
            f"backfill flow run {flow_run.id} ended {name}; "
            f"`prefect flow-run inspect {flow_run.id}` shows why"
        )
