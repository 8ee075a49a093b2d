"""The project's `prefect.yaml` on a real Prefect server, run by a real process worker.

* `prefect --no-prompt deploy --all`, from the checkout as it is, creates every deployment (the
  work pool is created first: `deploy` does not create pools when it may not prompt);
* a run of the `backfill` deployment over a date range, picked up by `prefect worker start
  --pool recon-process --type process`, completes, and its periods are in the database; run
  again, it skips them all;
* a signed Stripe webhook posted to `recon webhooks serve` becomes a `recon.provider.changed`
  event, which the deployment trigger of `on-provider-event` turns into a flow run with the
  event's parameters, which the worker runs to completion.

The deployment is made from an environment without RECON_PROJECT_DIR, so the pull step keeps
its template and the worker resolves it from its own environment when it runs a flow.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from apps.webhooks.signatures import stripe_signature_header
from flows.backfill import periods
from recon.db.engine import make_engine
from tests.e2e.conftest import TenantDatabase, failed
from tests.e2e.helpers import (
    POOL,
    PREFECT,
    RECON,
    REPO_ROOT,
    TENANT,
    WORLD_END,
    PrefectReads,
    PrefectServer,
    SandboxEnv,
    Service,
    free_port,
    run_cli,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

DEPLOYMENTS = {
    "daily/daily-demo": "flows/daily.py:daily",
    "backfill/backfill": "flows/backfill.py:backfill",
    "on-provider-event/on-provider-event": "flows/on_event.py:on_provider_event",
    "close-crashed-runs/on-run-crashed": "flows/crashed.py:close_crashed_runs_flow",
}
BACKFILL = (WORLD_END - dt.timedelta(days=20), WORLD_END)
BACKFILL_PERIOD_DAYS = 14
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
RUN_TIMEOUT = 180.0


@dataclass
class Stack(PrefectReads):
    """The server, the worker and the receiver of this module, with their logs."""

    server: PrefectServer
    sandbox: SandboxEnv
    engine: Engine
    env: dict[str, str]
    api: httpx.Client
    services: list[Service] = field(default_factory=list)
    deploy_output: str = ""
    receiver_url: str = ""

    def logs(self) -> str:
        """Every log, for a failure message."""
        parts = [f"--- prefect deploy ---\n{self.deploy_output[-3000:]}"]
        parts += [f"--- {s.name} ---\n{s.log_tail()}" for s in self.services]
        parts.append(f"--- prefect server ---\n{self.server.service.log_tail()}")
        return "\n".join(parts)

    def wait_for_end(self, flow_run_id: str) -> dict[str, Any]:
        """The flow run once it reached a terminal state (fails after RUN_TIMEOUT)."""

        def ended() -> dict[str, Any] | None:
            run = self.flow_run(flow_run_id)
            return run if run["state_type"] in TERMINAL else None

        return dict(
            wait_until(
                f"flow run {flow_run_id} to end",
                ended,
                timeout=RUN_TIMEOUT,
                interval=1.0,
                diagnostics=lambda: f"{self.flow_run(flow_run_id)}\n{self.logs()}",
            )
        )

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]


@pytest.fixture(scope="module")
def stack(
    prefect_server: PrefectServer,
    sandbox_env: SandboxEnv,
    tenant_database: TenantDatabase,
    deployed: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The deployments (`prefect deploy --all`), a process worker and the webhook receiver."""
    logs = tmp_path_factory.mktemp("deployments")
    url, env = tenant_database("deployments")
    engine = make_engine(url)
    api = httpx.Client(base_url=prefect_server.api_url, timeout=30, trust_env=False)
    stack = Stack(prefect_server, sandbox_env, engine, env, api)
    top_level_before = {p.name for p in REPO_ROOT.iterdir()}
    stack.deploy_output = deployed
    try:
        worker_env = env | {"PREFECT_WORKER_QUERY_SECONDS": "1"}
        worker = [PREFECT, "worker", "start", "--pool", POOL, "--type", "process", "--name", "e2e"]
        stack.services.append(
            Service(
                "prefect worker",
                worker,
                env=worker_env,
                cwd=REPO_ROOT,
                log_path=logs / "worker.log",
            )
        )
        port = free_port()
        receiver = Service(
            "recon webhooks serve",
            [RECON, "webhooks", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=logs,
            log_path=logs / "webhooks.log",
        )
        stack.services.append(receiver)

        def listening() -> bool:
            assert receiver.running(), f"the receiver exited:\n{receiver.log_tail()}"
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        wait_until("the webhook receiver", listening, timeout=90, diagnostics=stack.logs)
        stack.receiver_url = f"http://127.0.0.1:{port}"
        yield stack
    finally:
        for service in reversed(stack.services):  # the worker before the server it talks to
            service.stop()
        api.close()
        engine.dispose()
        left = {p.name for p in REPO_ROOT.iterdir()} - top_level_before
        assert not left, f"the flow runs left {sorted(left)} in the checkout"


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest, stack: Stack) -> Iterator[None]:
    """A failed test shows what the worker, the receiver and the server said."""
    yield
    if failed(request):
        print(stack.logs())


def test_deploy_all_creates_every_deployment_from_the_project_file(stack: Stack) -> None:
    for name, entrypoint in DEPLOYMENTS.items():
        deployment = stack.deployment(name)
        assert deployment["entrypoint"] == entrypoint
        assert deployment["work_pool_name"] == POOL
        assert deployment["pull_steps"] == [
            {
                "prefect.deployments.steps.set_working_directory": {
                    "directory": "{{ $RECON_PROJECT_DIR }}"
                }
            }
        ], "the worker, not the deployer, says where the checkout is"
    daily = stack.deployment("daily/daily-demo")
    (schedule,) = daily["schedules"]
    assert schedule["schedule"]["cron"] == "0 6 * * *"
    assert schedule["schedule"]["timezone"] == "Europe/London"
    assert (daily["global_concurrency_limit"] or {}).get("limit") == 1, daily
    assert daily["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    event = stack.deployment("on-provider-event/on-provider-event")
    automations = stack.api.post("/automations/filter", json={}).json()
    triggered = [
        a
        for a in automations
        if any(action.get("deployment_id") == event["id"] for action in a["actions"])
    ]
    assert len(triggered) == 1, automations
    assert triggered[0]["enabled"]
    assert triggered[0]["trigger"]["expect"] == ["recon.provider.changed"]


def backfill_runs(
    stack: Stack, windows: list[tuple[dt.date, dt.date]]
) -> list[tuple[dt.date, dt.date, str]]:
    """The recorded runs of the backfill's periods, in order."""
    rows = stack.query("SELECT window_from, window_to, status FROM runs ORDER BY started_at")
    found = [(dt.date.fromisoformat(str(f)), dt.date.fromisoformat(str(t)), s) for f, t, s in rows]
    return [run for run in found if run[:2] in windows]


def test_a_backfill_deployment_run_completes_and_is_in_the_database(stack: Stack) -> None:
    start, end = BACKFILL
    argv = [PREFECT, "deployment", "run", "backfill/backfill", "-p", f"tenant={TENANT}",
            "-p", f"date_from={start}", "-p", f"date_to={end}",
            "-p", f"period_days={BACKFILL_PERIOD_DAYS}"]  # fmt: skip
    output = run_cli(argv, stack.env)
    match = re.search(r"UUID: ([0-9a-f-]{36})", output)
    assert match, output
    run = stack.wait_for_end(match.group(1))
    assert run["state_type"] == "COMPLETED", f"{run['state']}\n{stack.logs()}"
    assert run["work_pool_name"] == POOL

    windows = periods(start, end, BACKFILL_PERIOD_DAYS)
    assert len(windows) == 2
    recorded = stack.query("SELECT window_from, window_to, status FROM runs ORDER BY window_from")
    assert [(dt.date.fromisoformat(str(f)), dt.date.fromisoformat(str(t)), s)
            for f, t, s in recorded] == [(f, t, "completed") for f, t in windows]  # fmt: skip
    ((allocations,),) = stack.query(
        "SELECT COUNT(*) FROM allocations a JOIN transactions t "
        "ON a.transaction_ref = t.source || ':' || t.account_ref || ':' || t.source_id "
        "WHERE t.booked_on BETWEEN :start AND :end",
        start=str(start),
        end=str(end),
    )
    assert allocations > 0
    ((transactions,),) = stack.query(
        "SELECT COUNT(*) FROM transactions WHERE booked_on BETWEEN :start AND :end",
        start=str(start),
        end=str(end),
    )
    assert transactions > 0

    # Run again: every period completed already, so nothing is reconciled a second time.
    output = run_cli(argv, stack.env)
    match = re.search(r"UUID: ([0-9a-f-]{36})", output)
    assert match, output
    again = stack.wait_for_end(match.group(1))
    assert again["state_type"] == "COMPLETED", f"{again['state']}\n{stack.logs()}"
    assert backfill_runs(stack, windows) == [(f, t, "completed") for f, t in windows]


def test_a_signed_stripe_webhook_starts_the_event_deployment_through_its_trigger(
    stack: Stack,
) -> None:
    payouts = stack.sandbox.sandbox.stripe_seed.payouts
    paid = payouts[payouts["status"] == "paid"]
    payout = paid.iloc[len(paid) // 2]
    arrival = dt.date.fromisoformat(str(payout["arrival_on"]))
    stamp = calendar.timegm(arrival.timetuple())
    event_id = f"evt_e2e_{payout['payout_id']}"
    body = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "payout.paid",
            "created": stamp,
            "data": {
                "object": {
                    "id": str(payout["payout_id"]),
                    "object": "payout",
                    "arrival_date": stamp,
                    "status": "paid",
                }
            },
        }
    ).encode()
    secret = stack.sandbox.sandbox.credentials.stripe_webhook_secret
    deployment = stack.deployment("on-provider-event/on-provider-event")
    # Other modules share the server (the zombie test holds a run of this deployment): only runs
    # that appear after this delivery are this test's.
    earlier = {r["id"] for r in stack.flow_runs_of(deployment["id"])}

    response = stack.api.post(
        f"{stack.receiver_url}/webhooks/stripe/{TENANT}",
        content=body,
        headers={
            "Stripe-Signature": stripe_signature_header(body, secret, int(time.time())),
            "Content-Type": "application/json",
        },
        timeout=30,
    )
    assert response.status_code == 200, f"{response.text}\n{stack.logs()}"
    assert response.json() == {"received": True, "new": 1, "duplicates": 0}

    (run,) = wait_until(
        "a flow run of on-provider-event",
        lambda: [r for r in stack.flow_runs_of(deployment["id"]) if r["id"] not in earlier],
        timeout=60,
        interval=1.0,
        diagnostics=stack.logs,
    )
    window = (arrival - dt.timedelta(days=3), arrival + dt.timedelta(days=3))
    assert run["parameters"] == {
        "tenant": TENANT,
        "date_from": str(window[0]),
        "date_to": str(window[1]),
        "event_id": event_id,
        "provider": "stripe",
    }
    ended = stack.wait_for_end(run["id"])
    assert ended["state_type"] == "COMPLETED", f"{ended['state']}\n{stack.logs()}"

    recorded = stack.query(
        "SELECT status, sources FROM runs WHERE window_from = :start AND window_to = :end",
        start=str(window[0]),
        end=str(window[1]),
    )
    assert len(recorded) == 1 and recorded[0][0] == "completed", recorded
    assert sorted(json.loads(recorded[0][1])) == ["bank", "stripe", "whmcs"]
    ((received,),) = stack.query(
        "SELECT COUNT(*) FROM webhook_events WHERE provider = 'stripe' AND event_id = :event",
        event=event_id,
    )
    assert received == 1
