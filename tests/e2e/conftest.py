"""Fixtures of the end-to-end tests: a real Prefect server, the sandbox world, tenant databases.

The Prefect server is started once per session (`prefect server start` in a subprocess, its own
PREFECT_HOME and SQLite database in a temporary directory). The sandbox providers are served in
this process on a free loopback port; the tenant's databases are SQLite FILES so that the
subprocesses (`recon run`, a Prefect worker and its flow runs, `recon webhooks serve`) share them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.serve import run_in_thread
from connectors.sandbox.world import SandboxWorld, world_ending
from tests.e2e.helpers import (
    POOL,
    PREFECT,
    REPO_ROOT,
    TENANT,
    WORLD_DAYS,
    WORLD_END,
    WORLD_INVOICES,
    WORLD_SEED,
    PrefectServer,
    SandboxEnv,
    base_env,
    create_tenant_database,
    prefect_client_env,
    run_cli,
    start_prefect_server,
)

BANK_TRANSACTIONS = "/api/v2/accounts/*/transactions/"
MALFORMED_BANK_LINES = 2


def _bad_currency(record: dict[str, object]) -> None:
    amount = record.get("transactionAmount")
    if isinstance(amount, dict):
        amount["currency"] = "EURO"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, for fixtures that print logs on failure."""
    report = yield
    setattr(item, f"e2e_report_{report.when}", report)
    return report


def failed(request: pytest.FixtureRequest) -> bool:
    """Whether the requesting test failed in its setup or its call."""
    return any(
        getattr(getattr(request.node, f"e2e_report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's scratch directory (Prefect homes, logs, databases)."""
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def prefect_server(e2e_dir: Path) -> Iterator[PrefectServer]:
    """A real Prefect server on a free loopback port; stopped (with its children) at the end."""
    server = start_prefect_server(e2e_dir / "prefect-server", e2e_dir / "prefect-server.log")
    try:
        yield server
    finally:
        server.service.stop()


@pytest.fixture(scope="session")
def sandbox_env() -> Iterator[SandboxEnv]:
    """Every fake provider serving a small world (600 invoices over 60 days to WORLD_END).

    The first booked lines of every bank page carry an unknown currency, on every fetch, so
    each run quarantines the same few records and conservation has something to account for.
    The bank's daily quota is lifted: the sandbox is shared by many runs in one day.
    """
    world = world_ending(WORLD_END, n_invoices=WORLD_INVOICES, days=WORLD_DAYS, seed=WORLD_SEED)
    sandbox = SandboxWorld(world, tenant=TENANT, as_of=WORLD_END, bank_daily_limit=100_000)
    sandbox.faults["gocardless"].malform(
        _bad_currency,
        records=("transactions", "booked"),
        limit=MALFORMED_BANK_LINES,
        path=BANK_TRANSACTIONS,
    )
    with run_in_thread(sandbox.build_app()) as server:
        yield SandboxEnv(sandbox, server)


TenantDatabase = Callable[[str], tuple[str, dict[str, str]]]


@pytest.fixture(scope="session")
def tenant_database(
    e2e_dir: Path, sandbox_env: SandboxEnv, prefect_server: PrefectServer
) -> TenantDatabase:
    """Make a migrated SQLite database file with the tenant registered; returns its URL and the
    environment of a subprocess that works on it (RECON_*, PREFECT_API_URL to the server)."""
    client_home = e2e_dir / "prefect-client"
    client_home.mkdir(exist_ok=True)

    def make(name: str) -> tuple[str, dict[str, str]]:
        url = create_tenant_database(e2e_dir / "databases" / f"{name}.db", sandbox_env)
        env = (
            base_env()
            | prefect_client_env(prefect_server.api_url, client_home)
            | sandbox_env.recon_env(url, e2e_dir / "var" / name)
        )
        return url, env

    return make


@pytest.fixture(scope="session")
def deployed(e2e_dir: Path, prefect_server: PrefectServer) -> str:
    """The project's `prefect.yaml` deployed on the server, once per session: the work pool is
    created first (`deploy` does not create pools when it may not prompt), then
    `prefect --no-prompt deploy --all` runs from an environment without RECON_PROJECT_DIR, so
    the pull step keeps its template. Returns what `deploy` printed."""
    home = e2e_dir / "prefect-deployer"
    home.mkdir(exist_ok=True)
    env = base_env() | prefect_client_env(prefect_server.api_url, home)
    top_level_before = {p.name for p in REPO_ROOT.iterdir()}
    run_cli([PREFECT, "work-pool", "create", POOL, "--type", "process"], env)
    output = run_cli([PREFECT, "--no-prompt", "deploy", "--all"], env)
    left = {p.name for p in REPO_ROOT.iterdir()} - top_level_before
    assert not left, f"the deployment left {sorted(left)} in the checkout"
    return output
