"""What the `on-run-crashed` deployment does once Prefect marks a reconcile flow run Crashed:
close the tenant's open `runs` rows as crashed, but only when no process of the tenant holds
its writer lock (holding it proves their writers are gone). SQLite and PostgreSQL (the
application role, under row-level security)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, text

from flows.crashed import Closed, close_crashed_runs
from recon.db.tenancy import admin_session
from recon.tenants import TenantSettings, add_tenant
from tasks.runs import start_run

WINDOW = (dt.date(2026, 3, 1), dt.date(2026, 3, 7))


@dataclass(frozen=True)
class Backend:
    owner: Engine
    app: Engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "sqlite":
        engine: Engine = request.getfixturevalue("sqlite_engine")
        return Backend(engine, engine)
    return Backend(
        request.getfixturevalue("pg_owner_engine"), request.getfixturevalue("pg_app_engine")
    )


def _statuses(engine: Engine) -> dict[str, tuple[str, bool]]:
    """flow_run_id -> (status, whether finished_at is set), read as the owner (no RLS)."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT flow_run_id, status, finished_at FROM runs"))
        return {str(f): (str(s), finished is not None) for f, s, finished in rows}


@pytest.fixture
def lock_holder(backend: Backend) -> Iterator[subprocess.Popen[str]]:
    """Another process holding tenant acme's writer lock until it is killed."""
    url = backend.app.url.render_as_string(hide_password=False)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time
                from recon.db.engine import make_engine
                from recon.locks import tenant_lock
                with tenant_lock(make_engine({url!r}), "acme"):
                    print("held", flush=True)
                    time.sleep(120)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_open_runs_are_closed_only_once_their_writer_is_gone(
    backend: Backend, lock_holder: subprocess.Popen[str]
) -> None:
    with admin_session(backend.owner) as session:
        add_tenant(session, "acme", "Acme", TenantSettings(), actor="test")
        add_tenant(session, "other", "Other", TenantSettings(), actor="test")
    start_run(backend.app, "acme", WINDOW, ["bank"], flow_run_id="crashed-flow-run")
    start_run(backend.app, "other", WINDOW, ["bank"], flow_run_id="other-flow-run")

    # A process of the tenant holds the lock: Prefect may have called a live run a zombie.
    assert close_crashed_runs(backend.app, "acme") == Closed("acme", 0, busy=True)
    assert _statuses(backend.owner)["crashed-flow-run"] == ("running", False)

    lock_holder.kill()
    lock_holder.wait()
    # the database may take a moment to see the killed holder's connection close
    deadline = time.monotonic() + 10
    while (result := close_crashed_runs(backend.app, "acme")).busy:
        assert time.monotonic() < deadline, "the killed holder's lock was never released"
        time.sleep(0.1)
    assert result == Closed("acme", 1, busy=False)
    assert _statuses(backend.owner) == {
        "crashed-flow-run": ("crashed", True),
        "other-flow-run": ("running", False),  # another tenant's run is not touched
    }
    # closing again finds nothing left to close
    assert close_crashed_runs(backend.app, "acme") == Closed("acme", 0, busy=False)
