"""Starting a re-run from the UI: through the Prefect `backfill` deployment when PREFECT_API_URL
names a server, else the reconcile flow in this process (with Prefect's guarded temporary API)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any

from recon.errors import ConfigError

DEPLOYMENT = "backfill/backfill"  # flow name / deployment name, as in prefect.yaml


@dataclass(frozen=True)
class Started:
    """What was started: a deployment's flow run (not awaited) or a finished local run."""

    how: str
    flow_run: str
    state: str


def through_deployment(tenant: str, start: dt.date, end: dt.date) -> Started:
    """Create a flow run of the backfill deployment and return without waiting for it."""
    import httpx
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    parameters = {
        "tenant": tenant,
        "date_from": start.isoformat(),
        "date_to": end.isoformat(),
        "period_days": max(1, (end - start).days + 1),
        "sources": None,
        "refetch": False,
    }
    try:
        run: Any = run_deployment(name=DEPLOYMENT, parameters=parameters, timeout=0)
    except ObjectNotFound:
        raise ConfigError(
            f"the Prefect server has no deployment {DEPLOYMENT}; deploy prefect.yaml first"
        ) from None
    except (httpx.HTTPError, RuntimeError, OSError) as exc:
        raise ConfigError(f"cannot reach the Prefect API ({type(exc).__name__})") from None
    state = str(run.state.name) if run.state is not None else "Scheduled"
    return Started("deployment", str(run.id), state)


def locally(tenant: str, start: dt.date, end: dt.date) -> Started:
    """Run the reconcile flow here, to its end."""
    from apps.cli.run import run_flow
    from apps.prefect_server import local_prefect_api
    from flows.reconcile import reconcile

    local_prefect_api()
    outcome = run_flow(reconcile, tenant=tenant, date_from=start, date_to=end)
    return Started("local", outcome.run_id, "Completed")


def start(tenant: str, start_day: dt.date, end_day: dt.date) -> Started:
    """The deployment when PREFECT_API_URL is set, else a local run."""
    if os.environ.get("PREFECT_API_URL"):
        return through_deployment(tenant, start_day, end_day)
    return locally(tenant, start_day, end_day)
