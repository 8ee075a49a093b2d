"""A sandbox world, a migrated database with its tenant, and Prefect's test harness."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness
from sqlalchemy import Engine

from connectors.sandbox.serve import RunningServer, run_in_thread
from connectors.sandbox.world import SandboxWorld, world_ending
from recon.db import migrate
from recon.db.engine import make_engine
from recon.db.tenancy import admin_session
from recon.settings import get_settings
from recon.tenants import TenantSettings, add_tenant

TENANT = "acme"
AS_OF = dt.date(2026, 10, 31)


@pytest.fixture(scope="module")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API per module (one per test is slow; a session-wide one would
    leave PREFECT_API_URL set for tests that expect no Prefect server)."""
    with prefect_test_harness(server_startup_timeout=60):
        yield


@dataclass
class Pipeline:
    """What a pipeline test works with."""

    sandbox: SandboxWorld
    server: RunningServer
    engine: Engine
    url: str

    def new_database(self, path: Path) -> Engine:
        """Another migrated database with the same tenant (for comparisons)."""
        engine = make_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)
        _register(engine, self.sandbox, self.server.url)
        return engine


def _register(engine: Engine, sandbox: SandboxWorld, url: str) -> None:
    settings = TenantSettings.model_validate(sandbox.tenant_settings(url))
    with admin_session(engine) as session:
        add_tenant(session, TENANT, "Acme Hosting", settings, actor="test")


@pytest.fixture(scope="module")
def sandbox() -> SandboxWorld:
    world = world_ending(AS_OF, n_invoices=500, days=60, seed=5)
    # Many runs hit the same sandbox bank in one day here; the quota itself is tested elsewhere.
    return SandboxWorld(world, tenant=TENANT, as_of=AS_OF, bank_daily_limit=1000)


@pytest.fixture
def pipeline(
    sandbox: SandboxWorld,
    prefect_harness: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Pipeline]:
    """The sandbox served, and RECON_* pointing the flow at it and at a fresh database."""
    with run_in_thread(sandbox.build_app()) as server:
        url = f"sqlite:///{tmp_path / 'recon.db'}"
        monkeypatch.setenv("RECON_DATABASE_URL", url)
        monkeypatch.setenv("RECON_VAULT_ADDR", server.url)
        monkeypatch.setenv("RECON_VAULT_ROLE_ID", sandbox.credentials.vault_role_id)
        monkeypatch.setenv("RECON_VAULT_SECRET_ID", sandbox.credentials.vault_secret_id)
        get_settings.cache_clear()
        engine = make_engine(url)
        migrate.upgrade(engine)
        _register(engine, sandbox, server.url)
        yield Pipeline(sandbox, server, engine, url)
        engine.dispose()
        for plan in sandbox.faults.values():
            plan.clear()
