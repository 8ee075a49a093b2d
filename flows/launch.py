"""Starting a reconcile run from an entry point: here in this process (under Prefect's guarded
temporary API unless `PREFECT_API_URL` names a server), or as a flow run of the `backfill`
deployment on a Prefect server. The CLI (`recon run`, `backfill`, `demo`) and the UI's re-run
form both start runs this way."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from recon.errors import ConfigError

if TYPE_CHECKING:
    from flows.outcome import RunOutcome

HEARTBEAT_SECONDS = 30
"""How often a flow run started here sends a heartbeat: what prefect.yaml sets for deployments
(Prefect's minimum). automations/zombie-flow-runs.yaml crashes a run silent for 3 of them; with
Prefect's default (180 s) an ad hoc run on a shared server would be crashed while still working."""

DEPLOYMENT = "backfill/backfill"  # flow name / deployment name, as in prefect.yaml

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Started:
    """What was started: a deployment's flow run (not awaited) or a finished local run."""

    how: str
    flow_run: str
    state: str


def run_flow(flow: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call a flow here with the heartbeat frequency the deployments use, on this process's
    temporary API when one was started (`start_local_api`)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.prefect_server import api_settings

    with (
        api_settings(),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: HEARTBEAT_SECONDS}),
    ):
        return flow(*args, **kwargs)


def start_local_api() -> None:
    """Start the guarded temporary API for flow runs of this process when `PREFECT_API_URL` is
    unset (once per process), without waiting: `run_flow` waits for it to answer."""
    from flows.prefect_server import begin_local_prefect_api

    begin_local_prefect_api()


def reconcile_here(
    tenant: str,
    date_from: dt.date,
    date_to: dt.date,
    *,
    sources: Sequence[str] | None = None,
    refetch: bool = False,
    announce: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
) -> RunOutcome:
    """Run the reconcile flow in this process, to its end, and return its outcome.

    The temporary API is started first and boots on the other core while this process imports
    the flow; `announce`, when given, is a context manager
    factory entered around the flow call (the CLI's spinner), which first waits for the server.
    """
    start_local_api()
    from flows.reconcile import reconcile

    # great-expectations' context is built by each source when it needs GX (not on a replay
    # whose stored verdicts are all reused): tasks.extract.extract_source
    chosen = list(sources) if sources else None
    with announce() if announce is not None else contextlib.nullcontext():
        return run_flow(
            reconcile, tenant=tenant, date_from=date_from, date_to=date_to, sources=chosen,
            refetch=refetch,
        )  # fmt: skip


def backfill_parameters(tenant: str, start: dt.date, end: dt.date) -> dict[str, Any]:
    """The backfill deployment's parameters for one window, run as a single period."""
    return {
        "tenant": tenant,
        "date_from": start.isoformat(),
        "date_to": end.isoformat(),
        "period_days": max(1, (end - start).days + 1),
        "sources": None,
        "refetch": False,
    }


def through_deployment(tenant: str, start: dt.date, end: dt.date) -> Started:
    """Create a flow run of the backfill deployment and return without waiting for it; a
    missing deployment or an unreachable API is a ConfigError of one sentence."""
    import httpx
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        run: Any = run_deployment(
            name=DEPLOYMENT, parameters=backfill_parameters(tenant, start, end), timeout=0
        )
    except ObjectNotFound:
        raise ConfigError(
            f"the Prefect server has no deployment {DEPLOYMENT}; deploy prefect.yaml first"
        ) from None
    except (httpx.HTTPError, RuntimeError, OSError) as exc:
        raise ConfigError(f"cannot reach the Prefect API ({type(exc).__name__})") from None
    state = str(run.state.name) if run.state is not None else "Scheduled"
    return Started("deployment", str(run.id), state)


def locally(tenant: str, start: dt.date, end: dt.date) -> Started:
    """Run the reconcile flow for the window here, to its end."""
    outcome = reconcile_here(tenant, start, end)
    return Started("local", outcome.run_id, "Completed")
