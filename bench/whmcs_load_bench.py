"""The WHMCS leg of a run on its own: serve (page the sandbox API), normalise, load, then load the
same batches again (a replay of unchanged pages), on a fresh SQLite database.

```
.venv/bin/python -m bench.whmcs_load_bench [--invoices 50000] [--profile load|serve]
```

Prints one JSON line of seconds per stage and the rows each load inserted, updated and left
unchanged. `--profile` prints the top of a cProfile of that stage instead of hiding it in a total.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
AS_OF = dt.date(2026, 10, 31)
TENANT = "bench"


def _timed(figures: dict[str, Any], name: str, profile: str | None, call: Callable[[], T]) -> T:
    """Run `call`, record its seconds under `name`, and profile it when asked to."""
    profiler = cProfile.Profile() if profile == name else None
    clock = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    result = call()
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    figures[name] = round(time.perf_counter() - clock, 3)
    return result


def run(n_invoices: int, profile: str | None) -> dict[str, Any]:
    """Build the world, page WHMCS from the sandbox, normalise and load twice."""
    from connectors.pages import Page
    from connectors.sandbox.serve import run_in_thread
    from connectors.sandbox.world import SandboxWorld, world_ending
    from connectors.whmcs import WhmcsClient
    from recon.db import migrate
    from recon.db.engine import make_engine
    from recon.db.models import Tenant
    from recon.db.tenancy import admin_session
    from tasks.land import FetchScope, land_or_replay
    from tasks.load import load_batches
    from tasks.normalise_whmcs import fetch_all, page_callback, whmcs_batches

    figures: dict[str, Any] = {"invoices": n_invoices, "load_average_start": os.getloadavg()}
    world = world_ending(AS_OF, n_invoices=n_invoices, days=1, seed=5)
    sandbox = SandboxWorld(world, tenant=TENANT, as_of=AS_OF)
    scope = FetchScope("whmcs", "whmcs", "whmcs", AS_OF, AS_OF)
    with (
        tempfile.TemporaryDirectory(prefix="whmcs-bench-") as tmp,
        run_in_thread(sandbox.build_app()) as server,
    ):
        credentials = sandbox.credentials

        def client(on_page: Callable[[Page], None]) -> WhmcsClient:
            return WhmcsClient(
                server.url,
                credentials.whmcs_identifier,
                credentials.whmcs_secret,
                on_page=page_callback(on_page),
            )

        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrate.upgrade(engine)
        with admin_session(engine) as session:
            session.add(Tenant(id=TENANT, name="Bench", settings={}))
        landed = _timed(
            figures,
            "serve",
            profile,
            lambda: land_or_replay(engine, TENANT, scope, fetch_all(client)),
        )
        figures["pages"] = len(landed.pages)
        batches = _timed(figures, "normalise", profile, lambda: whmcs_batches(landed.pages))
        for name in ("load", "load again"):
            results = _timed(figures, name, profile, lambda: load_batches(engine, TENANT, batches))
            figures[f"{name} rows"] = [
                {"dataset": r.dataset, "inserted": r.inserted, "updated": r.updated,
                 "unchanged": r.unchanged}
                for r in results
            ]  # fmt: skip
        engine.dispose()
    figures["load_average_end"] = os.getloadavg()
    return figures


def main() -> None:
    """Parse the arguments, run, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=50_000)
    parser.add_argument("--profile", choices=["serve", "normalise", "load", "load again"])
    args = parser.parse_args()
    print(json.dumps(run(args.invoices, args.profile)))


if __name__ == "__main__":
    main()
