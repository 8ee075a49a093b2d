"""A flow run killed with its worker is marked Crashed by Prefect, and its `runs` row follows.

On the session's real Prefect server, with the project's deployments (`prefect deploy --all`,
whose job variables turn flow-run heartbeats on) and the automation of
`automations/zombie-flow-runs.yaml` applied with `recon automations apply`:

* a run of the `on-provider-event` deployment is started and held inside its `reconcile`
  subflow (the sandbox answers its first WHMCS request slowly), with its `runs` row open;
* the worker and its flow-run process are killed with SIGKILL: nothing reports anything;
* the server marks both flow runs Crashed once their heartbeats stop;
* that Crashed event triggers the `on-run-crashed` deployment, which a worker started again
  runs: the `runs` row of the reconcile flow run is then `crashed` too.

Prefect's minimum heartbeat is 30 s (what prefect.yaml sets); the automation's `within` is
shortened from 90 s to ZOMBIE_WITHIN here so that the test waits less.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import Engine, text

from connectors.sandbox.faults import FaultRule
from recon.db.engine import make_engine
from tests.e2e.conftest import TenantDatabase, failed
from tests.e2e.helpers import (
    POOL,
    PREFECT,
    RECON,
    REPO_ROOT,
    TENANT,
    WORLD_END,
    WORLD_START,
    PrefectReads,
    PrefectServer,
    SandboxEnv,
    Service,
    descendants,
    living,
    run_cli,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

AUTOMATION_FILE = REPO_ROOT / "automations" / "zombie-flow-runs.yaml"
AUTOMATION = "recon-crash-zombie-flow-runs"
HEARTBEAT = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
ZOMBIE_WITHIN = 45
HELD_FOR = 20.0
"""How long the sandbox holds each WHMCS request of the run (under the 30 s read timeout)."""
HELD_REQUESTS = 20
WINDOW = (WORLD_END.replace(day=10), WORLD_END.replace(day=16))
START_TIMEOUT = 240.0
CLOSE_TIMEOUT = 240.0


@dataclass
class Zombies(PrefectReads):
    """The server, the tenant's database and the worker of this module."""

    server: PrefectServer
    sandbox: SandboxEnv
    engine: Engine
    env: dict[str, str]
    api: httpx.Client
    logs_dir: Path
    apply_output: str
    workers: list[Service] = field(default_factory=list)

    def start_worker(self, name: str) -> Service:
        worker = Service(
            f"prefect worker {name}",
            [PREFECT, "worker", "start", "--pool", POOL, "--type", "process", "--name", name],
            env=self.env | {"PREFECT_WORKER_QUERY_SECONDS": "1"},
            cwd=REPO_ROOT,
            log_path=self.logs_dir / f"{name}.log",
        )
        self.workers.append(worker)
        return worker

    def logs(self) -> str:
        parts = [f"--- {w.name} ---\n{w.log_tail()}" for w in self.workers]
        parts.append(f"--- prefect server ---\n{self.server.service.log_tail()}")
        return "\n".join(parts)

    def automations_named(self, name: str) -> list[dict[str, Any]]:
        response = self.api.post("/automations/filter", json={})
        response.raise_for_status()
        return [a for a in response.json() if a["name"] == name]

    def heartbeats_of(self, flow_run_id: str) -> list[dict[str, Any]]:
        response = self.api.post(
            "/events/filter",
            json={
                "filter": {
                    "event": {"name": ["prefect.flow-run.heartbeat"]},
                    "resource": {"id": [f"prefect.flow-run.{flow_run_id}"]},
                },
                "limit": 50,
            },
        )
        response.raise_for_status()
        return list(response.json()["events"])

    def runs(self) -> list[tuple[Any, ...]]:
        with self.engine.connect() as connection:
            return [
                tuple(row)
                for row in connection.execute(
                    text("SELECT flow_run_id, status, finished_at, error FROM runs")
                )
            ]


def automation_file_with_within(path: Path, seconds: int) -> Path:
    """A copy of the project's automation file whose triggers wait `seconds` instead."""
    data = yaml.safe_load(AUTOMATION_FILE.read_text(encoding="utf-8"))
    for automation in data["automations"]:
        automation["trigger"]["within"] = seconds
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def zombies(
    prefect_server: PrefectServer,
    sandbox_env: SandboxEnv,
    tenant_database: TenantDatabase,
    deployed: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Zombies]:
    """The automation applied (twice: applying is idempotent) and a process worker."""
    logs = tmp_path_factory.mktemp("zombies")
    url, env = tenant_database("zombies")
    engine = make_engine(url)
    api = httpx.Client(base_url=prefect_server.api_url, timeout=30, trust_env=False)
    shortened = automation_file_with_within(logs / "zombie-flow-runs.yaml", ZOMBIE_WITHIN)
    apply = [RECON, "automations", "apply", str(shortened)]
    output = run_cli(apply, env) + run_cli(apply, env)
    stack = Zombies(prefect_server, sandbox_env, engine, env, api, logs, output)
    try:
        stack.start_worker("zombie-1")
        yield stack
    finally:
        for worker in stack.workers:
            worker.stop()
        # the shortened automation must not act on the runs of later test modules
        for automation in stack.automations_named(AUTOMATION):
            api.delete(f"/automations/{automation['id']}")
        api.close()
        engine.dispose()


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest, zombies: Zombies) -> Iterator[None]:
    yield
    if failed(request):
        print(zombies.logs())


def test_heartbeats_and_the_zombie_automation_are_declared_with_the_deployments(
    zombies: Zombies,
) -> None:
    project = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    frequency = int(
        project["definitions"]["work_pools"]["process"]["job_variables"]["env"][HEARTBEAT]
    )
    for deployment in project["deployments"]:
        name = f"{_flow_name(deployment['entrypoint'])}/{deployment['name']}"
        job_variables = zombies.deployment(name)["job_variables"]
        assert job_variables["env"][HEARTBEAT] == str(frequency), (name, job_variables)

    (declared,) = yaml.safe_load(AUTOMATION_FILE.read_text(encoding="utf-8"))["automations"]
    assert declared["name"] == AUTOMATION
    assert declared["trigger"]["within"] >= 3 * frequency, "three heartbeats may be missed"

    # applied twice, one automation: the second apply updated the first
    (applied,) = zombies.automations_named(AUTOMATION)
    assert "created automation" in zombies.apply_output
    assert "updated automation" in zombies.apply_output
    assert applied["enabled"]
    assert applied["trigger"]["posture"] == "Proactive"
    assert applied["trigger"]["within"] == ZOMBIE_WITHIN
    (action,) = applied["actions"]
    assert (action["type"], action["state"]) == ("change-flow-run-state", "CRASHED"), action


def _flow_name(entrypoint: str) -> str:
    """The Prefect flow name of an entrypoint of this project."""
    names = {
        "flows/daily.py:daily": "daily",
        "flows/backfill.py:backfill": "backfill",
        "flows/on_event.py:on_provider_event": "on-provider-event",
        "flows/crashed.py:close_crashed_runs_flow": "close-crashed-runs",
    }
    return names[entrypoint]


def test_a_flow_run_killed_with_its_worker_is_marked_crashed_and_its_run_closed(
    zombies: Zombies,
) -> None:
    assert WORLD_START <= WINDOW[0] <= WINDOW[1] <= WORLD_END
    hold: FaultRule = zombies.sandbox.sandbox.faults["whmcs"].slow(HELD_FOR, count=HELD_REQUESTS)
    try:
        _kill_and_watch(zombies, hold)
    finally:
        hold.count = 0  # spent: later requests are answered at once


def _kill_and_watch(zombies: Zombies, hold: FaultRule) -> None:
    argv = [PREFECT, "deployment", "run", "on-provider-event/on-provider-event",
            "-p", f"tenant={TENANT}", "-p", f"date_from={WINDOW[0]}",
            "-p", f"date_to={WINDOW[1]}", "-p", "provider=stripe",
            "-p", "event_id=evt_zombie"]  # fmt: skip
    output = run_cli(argv, zombies.env)
    match = re.search(r"UUID: ([0-9a-f-]{36})", output)
    assert match, output
    parent_id = match.group(1)

    def held_inside_reconcile() -> str | None:
        running = [row[0] for row in zombies.runs() if row[1] == "running"]
        if hold.fired and len(running) == 1:
            return str(running[0])
        return None

    reconcile_id = wait_until(
        "the reconcile subflow to open its run and wait on WHMCS",
        held_inside_reconcile,
        timeout=START_TIMEOUT,
        interval=0.2,
        diagnostics=zombies.logs,
    )
    (worker,) = zombies.workers
    flow_run_processes = descendants(worker.pid)
    assert flow_run_processes, "the worker runs the flow in a process of its own"
    assert zombies.flow_run(parent_id)["state_type"] == "RUNNING"
    assert zombies.flow_run(reconcile_id)["state_type"] == "RUNNING"
    heartbeats = wait_until(
        "a heartbeat of the reconcile flow run",
        lambda: zombies.heartbeats_of(reconcile_id),
        timeout=60,
        interval=1.0,
        diagnostics=zombies.logs,
    )
    assert heartbeats[0]["resource"]["prefect.resource.id"] == f"prefect.flow-run.{reconcile_id}"

    worker.kill()
    killed_at = time.monotonic()
    assert not worker.running()
    wait_until(
        "the flow-run process to be gone",
        lambda: not living(flow_run_processes),
        timeout=10,
        interval=0.1,
    )

    def crashed() -> dict[str, str] | None:
        states = {i: zombies.flow_run(i)["state_type"] for i in (parent_id, reconcile_id)}
        return states if all(s == "CRASHED" for s in states.values()) else None

    wait_until(
        "Prefect to mark both flow runs crashed",
        crashed,
        timeout=ZOMBIE_WITHIN + 120,
        interval=1.0,
        diagnostics=lambda: f"{zombies.flow_run(reconcile_id)['state']}\n{zombies.logs()}",
    )
    detected_after = time.monotonic() - killed_at
    print(f"killed flow runs marked crashed {detected_after:.1f} s after SIGKILL")
    state = zombies.flow_run(reconcile_id)["state"]
    assert "heartbeats stopped" in (state["message"] or ""), state

    # Nothing runs the closing flow while no worker is up: the row is still open.
    ((flow_run_id, status, _, _),) = zombies.runs()
    assert (flow_run_id, status) == (reconcile_id, "running")

    zombies.start_worker("zombie-2")
    closer = zombies.deployment("close-crashed-runs/on-run-crashed")

    def closed() -> dict[str, Any] | None:
        runs = [
            r
            for r in zombies.flow_runs_of(closer["id"])
            if r["parameters"].get("flow_run_id") == reconcile_id
        ]
        done = [r for r in runs if r["state_type"] in {"COMPLETED", "FAILED", "CRASHED"}]
        return done[0] if len(done) == len(runs) == 1 else None

    close_run = wait_until(
        "the on-run-crashed deployment to run and finish",
        closed,
        timeout=CLOSE_TIMEOUT,
        interval=1.0,
        diagnostics=zombies.logs,
    )
    assert close_run["state_type"] == "COMPLETED", f"{close_run['state']}\n{zombies.logs()}"
    assert close_run["parameters"] == {"tenant": TENANT, "flow_run_id": reconcile_id}
    ((flow_run_id, status, finished_at, error),) = zombies.runs()
    assert (flow_run_id, status) == (reconcile_id, "crashed")
    assert finished_at is not None and error
    # only reconcile runs hold rows in `runs`: the crashed parent started no closing run
    assert all(
        r["parameters"].get("flow_run_id") != parent_id for r in zombies.flow_runs_of(closer["id"])
    )
