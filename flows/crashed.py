"""The `close-crashed-runs` flow: when Prefect marks a `reconcile` flow run Crashed, the tenant's
row in `runs` is closed as `crashed` too, so the table and the server agree.

A run killed with its worker cannot close its own row (no hook runs in a dead process). The
`on-run-crashed` deployment's trigger (prefect.yaml) starts this flow on every
`prefect.flow-run.Crashed` event of a `reconcile` run: Prefect's zombie automation sends one when
the run's heartbeats stop, and a worker sends one when it sees its flow-run process die.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from prefect import flow
from sqlalchemy import Engine

from connectors.runtime import Runtime
from recon.locks import TenantBusyError, tenant_lock
from recon.redaction import redact_exceptions
from tasks.runs import mark_crashed_runs

log = logging.getLogger("recon.flow")


@dataclass(frozen=True)
class Closed:
    """What closing a tenant's crashed runs did; `busy`: another writer held the lock."""

    tenant: str
    closed: int
    busy: bool


def close_crashed_runs(engine: Engine, tenant: str) -> Closed:
    """Close the tenant's runs still marked running, if no process of the tenant is writing.

    Holding the tenant's writer lock proves their writers are gone (the lock dies with its
    process). When another process holds it, nothing is closed: either the run Prefect marked
    crashed is in fact alive, or a newer run holds it and closed the stale rows when it started.
    """
    try:
        with tenant_lock(engine, tenant):
            return Closed(tenant, mark_crashed_runs(engine, tenant), busy=False)
    except TenantBusyError:
        return Closed(tenant, 0, busy=True)


@flow(name="close-crashed-runs")
@redact_exceptions
def close_crashed_runs_flow(tenant: str, flow_run_id: str = "") -> dict[str, Any]:
    """Close `tenant`'s runs left running by a crashed flow run (`flow_run_id`, for the log)."""
    result = close_crashed_runs(Runtime().checked_engine(), tenant)
    if result.busy:
        log.warning(
            "flow run %s of %s crashed, but a process of the tenant holds its lock: its rows "
            "are left to it",
            flow_run_id,
            tenant,
        )
    else:
        log.info("flow run %s crashed: closed %d run(s) of %s", flow_run_id, result.closed, tenant)
    return asdict(result)
