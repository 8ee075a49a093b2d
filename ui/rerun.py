"""Starting a re-run from the UI: through the Prefect `backfill` deployment when PREFECT_API_URL
names a server, else the reconcile flow in this process (with Prefect's guarded temporary API).
Both ways are `flows.launch`'s, shared with the CLI."""

from __future__ import annotations

import datetime as dt
import os

from flows.launch import DEPLOYMENT, Started, locally, through_deployment

__all__ = ["DEPLOYMENT", "Started", "locally", "start", "through_deployment"]


def start(tenant: str, start_day: dt.date, end_day: dt.date) -> Started:
    """The deployment when PREFECT_API_URL is set, else a local run."""
    if os.environ.get("PREFECT_API_URL"):
        return through_deployment(tenant, start_day, end_day)
    return locally(tenant, start_day, end_day)
