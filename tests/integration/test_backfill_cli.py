"""`recon backfill` through the real CLI: locally against the sandbox providers (period by period,
resumable, with a progress bar) and, with a Prefect API, as a flow run of the `backfill`
deployment with the flow's own parameter names. The progress query runs on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.testing.utilities import prefect_test_harness
from sqlalchemy import Engine, text

from apps.cli.backfill import DEPLOYMENT, deployment_parameters
from apps.cli.main import main
from connectors.sandbox.serve import run_in_thread
from connectors.sandbox.world import SandboxWorld, world_ending
from flows.backfill import backfill, periods
from recon.db import migrate
from recon.db.engine import make_engine
from recon.db.tenancy import admin_session
from recon.settings import get_settings
from recon.tenants import TenantSettings, add_tenant
from tasks.run_history import completed_windows
from tasks.runs import finish_run, start_run

TENANT = "acme"
AS_OF = dt.date(2026, 10, 31)


@pytest.fixture(scope="module")
def sandbox() -> SandboxWorld:
    world = world_ending(AS_OF, n_invoices=200, days=40, seed=5)
    return SandboxWorld(world, tenant=TENANT, as_of=AS_OF, bank_daily_limit=1000)


@pytest.fixture
def engine(
    sandbox: SandboxWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """The sandbox served and RECON_* pointing the CLI at it and at a fresh SQLite database."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with run_in_thread(sandbox.build_app()) as server:
        url = f"sqlite:///{tmp_path / 'recon.db'}"
        monkeypatch.setenv("RECON_DATABASE_URL", url)
        monkeypatch.setenv("RECON_VAULT_ADDR", server.url)
        monkeypatch.setenv("RECON_VAULT_ROLE_ID", sandbox.credentials.vault_role_id)
        monkeypatch.setenv("RECON_VAULT_SECRET_ID", sandbox.credentials.vault_secret_id)
        get_settings.cache_clear()
        found = make_engine(url)
        migrate.upgrade(found)
        settings = TenantSettings.model_validate(sandbox.tenant_settings(server.url))
        with admin_session(found) as session:
            add_tenant(session, TENANT, "Acme Hosting", settings, actor="test")
        yield found
        found.dispose()


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def runs(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT window_from, window_to, status FROM runs ORDER BY window_from")
        )
        return [(str(f), str(t), str(s)) for f, t, s in rows]


def test_a_backfill_runs_each_period_once_and_resumes_where_it_stopped(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = AS_OF - dt.timedelta(days=13), AS_OF
    weeks = periods(first, last, 7)
    # An earlier backfill stopped after its first week:
    code, out, err = cli(
        capsys, "backfill", "--tenant", TENANT,
        "--from", str(first), "--to", str(weeks[0][1]), "--period", "week",
    )  # fmt: skip
    assert code == 0, err
    assert runs(engine) == [(str(weeks[0][0]), str(weeks[0][1]), "completed")]
    assert "1/1" in out
    # Started again over the whole range, it runs only the week not done:
    code, out, err = cli(
        capsys, "backfill", "--tenant", TENANT, "--from", str(first), "--to", str(last)
    )
    assert code == 0, err
    assert runs(engine) == [(str(f), str(t), "completed") for f, t in weeks]
    assert "2/2" in out and "1 run, 1 already done" in out
    code, out, _ = cli(
        capsys, "backfill", "--tenant", TENANT, "--from", str(first), "--to", str(last)
    )
    assert code == 0 and "0 run, 2 already done" in out
    assert len(runs(engine)) == 2


def test_daily_periods_and_bad_arguments(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    first = AS_OF - dt.timedelta(days=2)
    code, _, err = cli(
        capsys, "backfill", "--tenant", TENANT,
        "--from", str(first), "--to", str(AS_OF), "--period", "day",
    )  # fmt: skip
    assert code == 0, err
    days = [str(first + dt.timedelta(days=n)) for n in range(3)]
    assert runs(engine) == [(d, d, "completed") for d in days]
    code, _, err = cli(
        capsys, "backfill", "--tenant", TENANT, "--from", str(AS_OF), "--to", str(first)
    )
    assert code == 2 and "after" in err
    code, _, err = cli(
        capsys, "backfill", "--tenant", TENANT,
        "--from", str(first), "--to", str(AS_OF), "--period", "year",
    )  # fmt: skip
    assert code == 2 and "Traceback" not in err
    code, _, err = cli(capsys, "backfill", "--tenant", "nobody", "--from", "2026-01-01", "--to",
                       "2026-01-02")  # fmt: skip
    assert code == 5


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Engine:
    if request.param == "sqlite":
        found: Engine = request.getfixturevalue("sqlite_engine")
        owner = found
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        found = request.getfixturevalue("pg_app_engine")
    with admin_session(owner) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    return found


def test_progress_counts_completed_periods_with_the_same_sources(store: Engine) -> None:
    cuts = periods(dt.date(2026, 3, 1), dt.date(2026, 3, 21), 7)
    done = start_run(store, TENANT, cuts[0], ["whmcs", "bank"])
    finish_run(store, TENANT, done, status="completed")
    failed = start_run(store, TENANT, cuts[1], ["whmcs", "bank"])
    finish_run(store, TENANT, failed, status="failed", error="boom")
    other = start_run(store, TENANT, cuts[2], ["whmcs"])
    finish_run(store, TENANT, other, status="completed")
    assert completed_windows(store, TENANT, cuts) == {cuts[0], cuts[2]}
    assert completed_windows(store, TENANT, cuts, sources=["bank", "whmcs"]) == {cuts[0]}
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    assert completed_windows(store, TENANT, cuts, since=later) == set()


def test_with_a_prefect_api_it_starts_the_backfill_deployment(
    sqlite_engine: Engine,
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECON_DATABASE_URL", sqlite_url)
    with admin_session(sqlite_engine) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    argv = ("backfill", "--tenant", TENANT, "--from", "2026-03-01", "--to", "2026-03-31")
    with prefect_test_harness(server_startup_timeout=60):
        code, _, err = cli(capsys, *argv)
        assert code == 2 and "prefect deploy" in err  # no deployment on that server yet
        deployment_id = backfill.to_deployment(
            name="backfill", parameters={"period_days": 7}
        ).apply()
        code, out, err = cli(capsys, *argv, "--period", "month", "--source", "bank", "--no-wait")
        assert code == 0, err
        assert DEPLOYMENT in out

        async def flow_runs() -> list[dict[str, object]]:
            async with get_client() as client:
                found = await client.read_flow_runs()
                return [r.parameters for r in found if r.deployment_id == deployment_id]

        (parameters,) = asyncio.run(flow_runs())
    expected = deployment_parameters(
        TENANT, dt.date(2026, 3, 1), dt.date(2026, 3, 31), 30, ["bank"], False
    )
    assert parameters == expected
