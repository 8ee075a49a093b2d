"""Where the time of a local `recon run` goes: imports, Prefect's temporary server, and each
stage of the flow (extract per source: serve, normalise, validate, load; reconcile: read, match,
store), on a world of one tenant served by the sandbox providers in this process.

    .venv/bin/python -m bench.pipeline_bench [--quick] [--out bench/results/pipeline_bench.json]

It times, each in a fresh interpreter, `import flows.reconcile` and `import apps.cli.main`, and
the start of the guarded temporary Prefect server; then `recon run` twice over the same window
as a subprocess (the first run fetches, the second replays what was landed), and the flow once
in this process against a second, fresh database. Stage figures come from the `timings` the
flow records in the run's counts (the `runs` table). The machine's load average is recorded
beside the figures: on a shared machine they are only comparable at a similar load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TENANT = "acme"
AS_OF = dt.date(2026, 10, 31)
FULL = {"n_invoices": 50_000, "days": 1}
QUICK = {"n_invoices": 2_000, "days": 1}
DEFAULT_OUT = ROOT / "bench" / "results" / "pipeline_bench.json"


def _python() -> str:
    return sys.executable


def _timed_import(module: str) -> float:
    """Seconds to import `module` in a fresh interpreter (the interpreter's own start excluded)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run(
        [_python(), "-c", code], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return round(float(out.stdout.strip().splitlines()[-1]), 3)


def _timed_prefect_start(env: dict[str, str]) -> float:
    """Seconds for `local_prefect_api()` to bring up the guarded temporary server."""
    code = (
        "import time; from apps.prefect_server import local_prefect_api; "
        "t = time.perf_counter(); local_prefect_api(); print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [_python(), "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return round(float(out.stdout.strip().splitlines()[-1]), 3)


def _latest_run(url: str) -> dict[str, Any]:
    """Status, duration and counts of the newest run in the database at `url`."""
    from sqlalchemy import select

    from recon.db.engine import make_engine
    from recon.db.models import Run
    from recon.db.tenancy import admin_session

    engine = make_engine(url)
    try:
        with admin_session(engine) as session:
            run = session.scalars(select(Run).order_by(Run.started_at.desc()).limit(1)).one()
            seconds = (
                (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
            )
            return {
                "status": run.status,
                "recorded_seconds": seconds,
                "counts": dict(run.counts),
                "error": run.error,
            }
    finally:
        engine.dispose()


def _stages(run: dict[str, Any]) -> dict[str, float]:
    """One flat row of stage seconds from a run's recorded timings."""
    timings = run["counts"].get("timings", {})
    row: dict[str, float] = {}
    for name, figures in timings.get("sources", {}).items():
        kind = name.split(":", 1)[0]
        for stage, seconds in figures.items():
            key = f"{kind} {stage}"
            row[key] = round(row.get(key, 0.0) + seconds, 3)
    for stage in ("serve", "normalise", "validate", "load"):
        row[f"all sources {stage}"] = round(
            sum(v for k, v in row.items() if k.endswith(f" {stage}") and "all" not in k), 3
        )
    row["extract (wall, concurrent)"] = timings.get("extract", 0.0)
    for stage, seconds in timings.get("reconcile", {}).items():
        row[f"reconcile {stage}"] = seconds
    row["flow body"] = timings.get("flow", 0.0)
    return row


def _register(url: str, sandbox: Any, served_url: str) -> None:
    import connectors.runtime  # noqa: F401  (installs Vault as the secret store)
    from recon.db import migrate
    from recon.db.engine import make_engine
    from recon.db.tenancy import admin_session
    from recon.tenants import TenantSettings, add_tenant

    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        settings = TenantSettings.model_validate(sandbox.tenant_settings(served_url))
        with admin_session(engine) as session:
            add_tenant(session, TENANT, "Acme Hosting", settings, actor="bench")
    finally:
        engine.dispose()


def _sizes(sandbox: Any, run: dict[str, Any]) -> dict[str, int]:
    world = sandbox.world
    kinds = world.transactions["source"].astype(str)
    stripe = sandbox.stripe_seed
    # each charge, refund and dispute also has its balance transaction
    movements = len(stripe.charges) + len(stripe.refunds) + len(stripe.disputes)
    stripe_objects = 2 * movements + len(stripe.payouts)
    loaded = {
        name.split(":", 1)[0]: figures["loaded"]
        for name, figures in run["counts"].get("sources", {}).items()
    }
    return {
        "invoices": len(world.invoices),
        "bank_lines": int((kinds == "bank").sum()),
        "stripe_lines": int((kinds == "stripe").sum()),
        "stripe_objects": stripe_objects,
        "gocardless_lines": int((kinds == "gocardless").sum()),
        **{f"loaded_{k}": v for k, v in sorted(loaded.items())},
    }


def run_bench(quick: bool) -> dict[str, Any]:
    """Build the world, serve it, time everything; the figures as a dict."""
    from connectors.sandbox.serve import run_in_thread
    from connectors.sandbox.world import SandboxWorld, world_ending

    size = QUICK if quick else FULL
    figures: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "world": dict(size),
        "load_average_start": list(os.getloadavg()),
        "cpus": os.cpu_count(),
    }
    clock = time.perf_counter()
    world = world_ending(AS_OF, n_invoices=size["n_invoices"], days=size["days"], seed=5)
    sandbox = SandboxWorld(world, tenant=TENANT, as_of=AS_OF, bank_daily_limit=1000)
    figures["world_build_seconds"] = round(time.perf_counter() - clock, 3)
    window_from = AS_OF - dt.timedelta(days=size["days"] - 1)
    figures["window"] = [window_from.isoformat(), AS_OF.isoformat()]

    figures["imports"] = {
        "flows.reconcile": _timed_import("flows.reconcile"),
        "apps.cli.main": _timed_import("apps.cli.main"),
        "prefect": _timed_import("prefect"),
    }
    with (
        tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp,
        run_in_thread(sandbox.build_app()) as server,
    ):
        base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("RECON_") and k != "PREFECT_API_URL"
        }
        env = {
            **base_env,
            "RECON_DATA_DIR": tmp,
            "RECON_VAULT_ADDR": server.url,
            "RECON_VAULT_ROLE_ID": sandbox.credentials.vault_role_id,
            "RECON_VAULT_SECRET_ID": sandbox.credentials.vault_secret_id,
            "PREFECT_HOME": str(Path(tmp) / "prefect"),
        }
        # The first start on a machine migrates Prefect's database and keeps it as a template in
        # PREFECT_HOME (a fresh one here); every later start, the runs below included, copies it.
        figures["prefect_server_start_first"] = _timed_prefect_start(env)
        figures["prefect_server_start"] = _timed_prefect_start(env)
        _point_here_at(env)  # registering a tenant appends to the audit chain: Vault's key

        cli_url = f"sqlite:///{Path(tmp) / 'cli.db'}"
        _register(cli_url, sandbox, server.url)
        env["RECON_DATABASE_URL"] = cli_url
        runs: list[dict[str, Any]] = []
        for label in ("first (fetch)", "second (replay)"):
            clock = time.perf_counter()
            done = subprocess.run(
                [str(Path(_python()).parent / "recon"), "run", "--tenant", TENANT,
                 "--from", window_from.isoformat(), "--to", AS_OF.isoformat()],
                cwd=ROOT, env=env, capture_output=True, text=True,
            )  # fmt: skip
            wall = round(time.perf_counter() - clock, 3)
            if done.returncode != 0:
                raise SystemExit(f"recon run failed ({done.returncode}): {done.stderr[-2000:]}")
            run = _latest_run(cli_url)
            if run["status"] != "completed":
                raise SystemExit(f"recon run failed ({done.returncode}): {done.stderr[-2000:]}")
            runs.append({"run": f"recon run, {label}", "wall": wall, **_stages(run)})
            print(json.dumps(runs[-1]), flush=True)
            figures.setdefault("sizes", _sizes(sandbox, run))
            figures.setdefault("run_counts", []).append(run["counts"])

        try:
            runs.append(_in_process(tmp, sandbox, server.url, window_from))
        except Exception as exc:  # the CLI figures stand on their own; say why this one is missing
            figures["in_process_error"] = f"{type(exc).__name__}: {exc}"
            print(f"flow in process failed: {figures['in_process_error']}", file=sys.stderr)
    figures["runs"] = runs
    figures["load_average_end"] = list(os.getloadavg())
    return figures


def _point_here_at(env: dict[str, str]) -> None:
    """Put the RECON_* settings of `env` in this process's environment (the bench's own)."""
    from recon.settings import get_settings

    os.environ.update({k: v for k, v in env.items() if k.startswith("RECON_")})
    get_settings.cache_clear()


def _in_process(tmp: str, sandbox: Any, served_url: str, window_from: dt.date) -> dict[str, Any]:
    """The flow called in this process (Prefect started here), on a fresh database."""
    url = f"sqlite:///{Path(tmp) / 'in-process.db'}"
    _register(url, sandbox, served_url)
    _point_here_at({"RECON_DATABASE_URL": url})
    clock = time.perf_counter()
    from apps.cli.run import run_flow
    from apps.prefect_server import local_prefect_api
    from flows.reconcile import reconcile

    imported = time.perf_counter() - clock
    clock = time.perf_counter()
    local_prefect_api()
    started = time.perf_counter() - clock
    clock = time.perf_counter()
    run_flow(reconcile, tenant=TENANT, date_from=window_from, date_to=AS_OF)
    wall = round(time.perf_counter() - clock, 3)
    row = {"run": "flow in process, first (fetch)", "wall": wall, **_stages(_latest_run(url))}
    row["imports (in process)"] = round(imported, 3)
    row["prefect start (in process)"] = round(started, 3)
    return row


def print_table(figures: dict[str, Any]) -> None:
    """The figures as a plain table on stdout."""
    print(f"world: {figures['world']}, window {figures['window'][0]}..{figures['window'][1]}")
    print(f"sizes: {figures.get('sizes')}")
    print(f"load average at start {figures['load_average_start']}, end "
          f"{figures['load_average_end']} ({figures['cpus']} CPUs)")  # fmt: skip
    print(f"world build: {figures['world_build_seconds']} s")
    for module, seconds in figures["imports"].items():
        print(f"import {module:<20} {seconds:>8.2f} s")
    print(
        f"prefect temporary server start, first on the machine "
        f"{figures['prefect_server_start_first']:>8.2f} s"
    )
    print(f"prefect temporary server start {figures['prefect_server_start']:>8.2f} s")
    stages: list[str] = []
    for run in figures["runs"]:
        stages.extend(k for k in run if k not in stages and k != "run")
    names = [r["run"] for r in figures["runs"]]
    width = max(len(s) for s in stages) + 2
    print("".ljust(width) + "".join(f"{n[:24]:>26}" for n in names))
    for stage in stages:
        cells = "".join(
            f"{run[stage]:>24.2f} s" if stage in run else f"{'-':>26}" for run in figures["runs"]
        )
        print(stage.ljust(width) + cells)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="A small world (2,000 invoices).")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON file ({DEFAULT_OUT}).")
    args = parser.parse_args(argv)
    figures = run_bench(args.quick)
    print_table(figures)
    out = args.out or (
        DEFAULT_OUT.with_name("pipeline_bench_quick.json") if args.quick else DEFAULT_OUT
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2, sort_keys=True, default=str) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
