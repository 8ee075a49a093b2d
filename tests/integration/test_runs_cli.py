"""`recon runs list|show` through the real CLI, on SQLite and on PostgreSQL (application role,
under row-level security): completed, failed, crashed, live and stuck runs, tables and JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from apps.cli.main import main
from recon.db.tenancy import admin_session
from recon.locks import tenant_lock
from recon.tenants import TenantSettings, add_tenant
from tasks.run_history import STUCK_AFTER
from tasks.runs import finish_run, mark_crashed_runs, start_run

WINDOW = (dt.date(2026, 3, 1), dt.date(2026, 3, 7))


@dataclass(frozen=True)
class Backend:
    owner: Engine
    app: Engine
    url: str


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Backend:
    if request.param == "sqlite":
        engine: Engine = request.getfixturevalue("sqlite_engine")
        url = request.getfixturevalue("sqlite_url")
        found = Backend(engine, engine, url)
    else:
        found = Backend(
            request.getfixturevalue("pg_owner_engine"),
            request.getfixturevalue("pg_app_engine"),
            request.getfixturevalue("pg_app_url"),
        )
    monkeypatch.setenv("RECON_DATABASE_URL", found.url)
    with admin_session(found.owner) as session:
        add_tenant(session, "acme", "Acme", TenantSettings(), actor="test")
        add_tenant(session, "other", "Other", TenantSettings(), actor="test")
    return found


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _history(engine: Engine) -> dict[str, str]:
    """A crashed, a failed and a completed run of acme (oldest first), one run of `other`."""
    crashed = start_run(engine, "acme", WINDOW, ["whmcs"])
    assert mark_crashed_runs(engine, "acme") == 1
    failed = start_run(engine, "acme", WINDOW, ["whmcs", "bank"])
    finish_run(engine, "acme", failed, status="failed", error="WHMCS refused the call [401]")
    done = start_run(engine, "acme", WINDOW, ["whmcs", "stripe"])
    counts = {"transactions": 12, "allocations_auto": 9, "exceptions": 3}
    finish_run(
        engine,
        "acme",
        done,
        status="completed",
        counts=counts,
        sums={"allocated_minor": {"EUR": 12345}},
    )
    foreign = start_run(engine, "other", WINDOW, ["whmcs"])
    finish_run(engine, "other", foreign, status="completed")
    return {"crashed": crashed, "failed": failed, "completed": done, "foreign": foreign}


def test_list_json_shows_each_runs_status_window_sources_counts_and_error(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _history(backend.app)
    code, out, err = cli(capsys, "runs", "list", "--tenant", "acme", "--json")
    assert code == 0, err
    runs = json.loads(out)
    assert [r["id"] for r in runs] == [ids["completed"], ids["failed"], ids["crashed"]]
    by_id = {r["id"]: r for r in runs}
    done = by_id[ids["completed"]]
    assert done["status"] == "completed" and done["stuck"] is False
    assert (done["window_from"], done["window_to"]) == ("2026-03-01", "2026-03-07")
    assert done["sources"] == ["whmcs", "stripe"]
    assert done["counts"]["allocations_auto"] == 9
    assert done["sums"] == {"allocated_minor": {"EUR": 12345}}
    assert done["duration_seconds"] is not None and done["duration_seconds"] >= 0
    assert by_id[ids["failed"]]["error"] == "WHMCS refused the call [401]"
    assert by_id[ids["crashed"]]["status"] == "crashed"
    assert by_id[ids["crashed"]]["finished_at"] is not None
    assert ids["foreign"] not in by_id  # another tenant's run never shows

    code, out, _ = cli(capsys, "runs", "list", "--tenant", "acme", "--status", "failed", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [ids["failed"]]
    code, out, _ = cli(capsys, "runs", "list", "--tenant", "acme", "--limit", "2", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [ids["completed"], ids["failed"]]


def test_list_table_for_people(backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _history(backend.app)
    code, out, _ = cli(capsys, "runs", "list", "--tenant", "acme")
    assert code == 0
    for key in ("completed", "failed", "crashed"):
        assert ids[key][:8] in out
    assert "crashed" in out and "failed" in out and "2026-03-01..2026-03-07" in out
    assert ids["foreign"][:8] not in out


def test_a_running_run_without_its_writer_is_stuck_and_with_it_is_running(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = start_run(backend.app, "acme", WINDOW, ["whmcs"])
    code, out, _ = cli(capsys, "runs", "show", run_id, "--tenant", "acme", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["status"] == "stuck" and shown["stored_status"] == "running"
    assert shown["finished_at"] is None
    code, out, _ = cli(capsys, "runs", "list", "--tenant", "acme", "--status", "stuck", "--json")
    assert [r["id"] for r in json.loads(out)] == [run_id]

    with tenant_lock(backend.app, "acme"):  # a live writer: the run is really running
        code, out, _ = cli(capsys, "runs", "show", run_id, "--tenant", "acme", "--json")
        assert code == 0 and json.loads(out)["status"] == "running"
        code, out, _ = cli(capsys, "runs", "list", "--tenant", "acme", "--status", "stuck")
        assert code == 0 and run_id[:8] not in out
    code, out, _ = cli(capsys, "runs", "show", run_id, "--tenant", "acme")
    assert code == 0 and "stuck" in out and "writer lock" in out


def test_show_table_has_counts_and_error_and_accepts_a_prefix(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _history(backend.app)
    code, out, err = cli(capsys, "runs", "show", ids["failed"][:8], "--tenant", "acme")
    assert code == 0, err
    assert ids["failed"] in out and "WHMCS refused the call [401]" in out
    code, out, _ = cli(capsys, "runs", "show", ids["completed"], "--tenant", "acme")
    assert "allocations_auto" in out and "12345" in out


def test_unknown_run_other_tenants_run_and_bad_status_are_one_sentence(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _history(backend.app)
    code, _, err = cli(capsys, "runs", "show", ids["foreign"], "--tenant", "acme")
    assert code == 5 and "recon runs list --tenant acme" in err and "Traceback" not in err
    code, _, err = cli(capsys, "runs", "list", "--tenant", "nobody")
    assert code == 5 and "recon tenant list" in err
    code, _, err = cli(capsys, "runs", "list", "--tenant", "acme", "--status", "bogus")
    assert code == 2 and "stuck" in err


def test_json_through_the_installed_entry_point(sqlite_engine: Engine, sqlite_url: str) -> None:
    with admin_session(sqlite_engine) as session:
        add_tenant(session, "acme", "Acme", TenantSettings(), actor="test")
    run_id = start_run(sqlite_engine, "acme", WINDOW, ["whmcs"])
    finish_run(sqlite_engine, "acme", run_id, status="completed", counts={"transactions": 4})
    env = dict(os.environ)
    env["RECON_DATABASE_URL"] = sqlite_url
    result = subprocess.run(
        [sys.executable, "-m", "apps", "runs", "list", "--tenant", "acme", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["id"] == run_id and row["counts"] == {"transactions": 4}


def test_a_run_running_for_longer_than_the_threshold_is_stuck_even_with_a_writer(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = start_run(backend.app, "acme", WINDOW, ["whmcs"])
    long_ago = datetime.now(UTC) - STUCK_AFTER - timedelta(minutes=5)
    with backend.owner.begin() as connection:
        connection.execute(
            text("UPDATE runs SET started_at = :at WHERE id = :id"), {"at": long_ago, "id": run_id}
        )
    with tenant_lock(backend.app, "acme"):
        code, out, _ = cli(capsys, "runs", "show", run_id, "--tenant", "acme", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["status"] == "stuck"
    assert shown["duration_seconds"] > STUCK_AFTER.total_seconds()
