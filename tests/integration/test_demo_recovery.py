"""The demo's own database survives an interrupted first run: it is rebuilt, never stuck."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from apps.demo import prepare_database
from connectors.runtime import Runtime
from recon.db import migrate
from recon.db.engine import make_engine
from recon.db.models import Base
from recon.errors import UnversionedSchemaError
from recon.settings import Settings

# `recon demo --no-ui` in a process that sends itself `signal` just before the `at`-th
# CREATE TABLE statement, i.e. in the middle of the demo database's first migration.
_INTERRUPTED_DEMO = """
import os, signal, sys
from sqlalchemy import Engine, event

sig, at = int(sys.argv[1]), int(sys.argv[2])
created = 0

@event.listens_for(Engine, "before_cursor_execute")
def _interrupt(conn, cursor, statement, parameters, context, executemany):
    global created
    if statement.lstrip().upper().startswith("CREATE TABLE"):
        created += 1
        if created == at:
            os.kill(os.getpid(), sig)

from apps.cli.main import main
sys.exit(main(["demo", "--no-ui"]))
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    env["RECON_DATA_DIR"] = str(tmp_path / "var")
    return env


def _schema_state(database: Path) -> tuple[str | None, set[str]]:
    engine = make_engine(f"sqlite:///{database}")
    try:
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
        return migrate.current_revision(engine), tables
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_demo_interrupted_during_its_first_migration_runs_again(tmp_path: Path) -> None:
    database = tmp_path / "var" / "demo" / "recon.db"
    for sig, at, code in ((signal.SIGINT, 5, 130), (signal.SIGKILL, 12, -signal.SIGKILL)):
        killed = subprocess.run(
            [sys.executable, "-c", _INTERRUPTED_DEMO, str(int(sig)), str(at)],
            env=_env(tmp_path),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert killed.returncode == code, (sig.name, killed.stdout[-2000:], killed.stderr[-2000:])
        if sig == signal.SIGINT:
            assert killed.stderr.strip().splitlines()[-1].endswith("interrupted")
        revision, tables = _schema_state(database)
        assert revision in (None, migrate.head_revision()), (sig.name, revision, tables)
        assert tables == (set() if revision is None else set(Base.metadata.tables)), sig.name
    again = subprocess.run(
        [sys.executable, "-m", "apps", "demo", "--no-ui"],
        env=_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-4000:]
    assert "all checks passed" in again.stdout
    assert _schema_state(database)[0] == migrate.head_revision()


def _demo_runtime(tmp_path: Path) -> Runtime:
    database = tmp_path / "var" / "demo" / "recon.db"
    return Runtime(
        Settings(database_url=f"sqlite:///{database}", data_dir=tmp_path / "var" / "demo")
    )


@pytest.mark.parametrize("left_behind", ["tables without a revision", "an unknown revision"])
def test_the_demo_rebuilds_its_own_database_and_nobody_elses(
    tmp_path: Path, left_behind: str
) -> None:
    runtime = _demo_runtime(tmp_path)
    engine = runtime.admin_engine
    migrate.upgrade(engine, "0001")
    with engine.begin() as connection:
        if left_behind == "tables without a revision":
            connection.exec_driver_sql("DELETE FROM alembic_version")
        else:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0999'")
    if left_behind == "tables without a revision":
        # A database the user named is never thrown away: the state is named instead.
        with pytest.raises(UnversionedSchemaError):
            prepare_database(runtime, disposable=False)
    summary = prepare_database(runtime, disposable=True)
    assert summary.startswith("rebuilt the demo database"), summary
    assert migrate.current_revision(engine) == migrate.head_revision()
    database = tmp_path / "var" / "demo" / "recon.db"
    assert database.stat().st_mode & 0o777 == 0o600  # rebuilt as private as it was made
    (copy,) = (tmp_path / "var" / "demo" / "backups").iterdir()
    assert copy.name in summary
    assert prepare_database(runtime, disposable=True) == (
        f"database at head ({migrate.head_revision()})"
    )
    runtime.close()
