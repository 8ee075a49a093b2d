"""The `recon` CLI end to end, in-process and (for the no-traceback promises) as a process."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from apps.cli.main import main
from connectors.sandbox.serve import RunningServer
from connectors.sandbox.vault import VaultState
from recon.db import migrate
from recon.errors import SchemaNotAtHeadError


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "apps", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard, not a speed goal: a demo takes minutes on a loaded CI core
        check=False,
    )


@pytest.fixture
def db_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setenv("RECON_DATABASE_URL", url)
    return url


def test_status_fails_on_an_empty_database_until_upgraded(
    capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    code, _, err = run(capsys, "db", "status")
    assert code != 0
    assert "recon db upgrade" in err
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0 and f"-> {migrate.head_revision()}" in out
    code, out, _ = run(capsys, "db", "status")
    assert code == 0 and "at head" in out


def test_upgrade_backs_up_a_database_that_holds_data(
    capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path
) -> None:
    assert run(capsys, "db", "upgrade", "0001")[0] == 0
    backups = tmp_path / "var" / "backups"
    assert not backups.exists()  # an empty database needs no backup
    code, _, err = run(capsys, "db", "upgrade")
    assert code == 0 and "backup written" in err
    (copy,) = backups.iterdir()
    import sqlite3

    with sqlite3.connect(copy) as conn:  # the copy is a database at the old revision
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)


def test_downgrade_then_status_fails(capsys: pytest.CaptureFixture[str], db_url: str) -> None:
    run(capsys, "db", "upgrade")
    code, out, _ = run(capsys, "db", "downgrade", "0001", "--no-backup")
    assert code == 0 and "-> 0001" in out
    assert run(capsys, "db", "status")[0] != 0
    code, _, err = run(capsys, "db", "downgrade", "nonexistent", "--no-backup")
    assert code != 0 and "nonexistent" in err


def test_data_commands_refuse_a_schema_not_at_head(
    capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    for args in (["tenant", "list"], ["tenant", "show", "x"], ["audit", "verify"]):
        code, _, err = run(capsys, *args)
        assert code != 0, args
        assert "recon db upgrade" in err
        assert len(err.strip().splitlines()) == 1


def test_tenant_add_list_show(capsys: pytest.CaptureFixture[str], db_url: str) -> None:
    run(capsys, "db", "upgrade")
    code, _, err = run(
        capsys,
        "tenant", "add", "acme-hosting", "--name", "Acme Hosting",
        "--set", "stripe.enabled=true",
        "--set", "whmcs.base_url=https://billing.acme.example",
        "--set", "gocardless.account_ids=[\"acc-1\"]",
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = run(capsys, "tenant", "list")
    assert code == 0 and "acme-hosting" in out and "stripe" in out
    code, out, _ = run(capsys, "tenant", "show", "acme-hosting")
    shown = json.loads(out)
    assert shown["settings"]["stripe"]["enabled"] is True
    assert shown["settings"]["gocardless"]["account_ids"] == ["acc-1"]
    assert shown["settings"]["auto_apply"] is False
    code, _, err = run(capsys, "tenant", "add", "acme-hosting", "--name", "Again")
    assert code != 0 and "already exists" in err
    code, _, err = run(capsys, "tenant", "show", "nobody")
    assert code != 0 and "recon tenant list" in err
    code, _, err = run(capsys, "tenant", "add", "Bad Id", "--name", "x")
    assert code != 0 and "not valid" in err
    code, _, err = run(capsys, "tenant", "add", "okay", "--name", "x", "--set", "nosuch=1")
    assert code != 0 and "nosuch" in err
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and "acme-hosting: 1 entries verified" in out


def test_audit_verify_names_the_broken_entry(
    capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path
) -> None:
    run(capsys, "db", "upgrade")
    run(capsys, "tenant", "add", "acme", "--name", "Acme")
    import sqlite3

    with sqlite3.connect(tmp_path / "x.db") as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET actor = 'mallory'")
    code, _, err = run(capsys, "audit", "verify")
    assert code != 0
    assert "seq 1" in err and "changed" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["db", "downgrade"], "Missing argument"),
        (["no-such-command"], "No such command"),
        (["tenant", "add", "acme"], "Missing option"),
        (["--log-format", "xml", "db", "status"], "human or json"),
    ],
)
def test_usage_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], db_url: str, args: list[str], needle: str
) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_invalid_setting_is_one_sentence(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECON_LOG_LEVEL", "LOUD")
    code, _, err = run(capsys, "db", "status")
    assert code != 0
    assert "RECON_LOG_LEVEL" in err and len(err.strip().splitlines()) == 1


def test_production_doctor_without_secrets_names_one_and_shows_no_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'prod.db'}"
    env = {"RECON_DATABASE_URL": url, "RECON_DATA_DIR": str(tmp_path)}
    assert run_process("db", "upgrade", env=env).returncode == 0
    result = run_process("doctor", env={**env, "RECON_ENV": "production"})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert "ui_cookie_secret" in result.stderr or "audit_export_signing_key" in result.stderr
    assert "RECON_VAULT_ADDR" in result.stdout + result.stderr


def test_a_bad_database_url_is_one_sentence(tmp_path: Path) -> None:
    result = run_process("db", "status", env={"RECON_DATABASE_URL": "not a url"})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "RECON_DATABASE_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.postgres
def test_backup_of_postgresql_with_pg_dump(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    pg_owner_url: str,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("RECON_DATABASE_URL", pg_owner_url)
    assert run(capsys, "db", "upgrade")[0] == 0
    target = tmp_path / "pg.dump"
    code, _out, err = run(capsys, "db", "backup", "--out", str(target))
    assert code == 0, err
    assert target.read_bytes().startswith(b"PGDMP")  # pg_dump's custom format


def test_production_doctor_passes_with_every_secret_in_vault(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
    production_vault: RunningServer,  # production refuses Vault over http
    sandbox_vault: VaultState,
) -> None:
    credentials = sandbox_vault.add_approle()
    run(capsys, "db", "upgrade")
    run(capsys, "tenant", "add", "acme", "--name", "Acme", "--set", "stripe.enabled=true")
    monkeypatch.setenv("RECON_ENV", "production")
    monkeypatch.setenv("RECON_VAULT_ADDR", production_vault.url)
    monkeypatch.setenv("RECON_VAULT_ROLE_ID", credentials.role_id)
    monkeypatch.setenv("RECON_VAULT_SECRET_ID", credentials.secret_id)
    sandbox_vault.put_secret(
        "recon/global",
        {
            "ui_cookie_secret": "c" * 32,
            "audit_export_signing_key": "k" * 32,
            "ui_oidc_client_secret": "o" * 32,
            "audit_chain_key": "a" * 32,
        },
    )
    sandbox_vault.put_secret(
        "recon/tenants/acme", {"whmcs_api_identifier": "ident-1", "whmcs_api_secret": "s" * 20}
    )
    code, out, err = run(capsys, "doctor")
    assert code != 0
    assert "stripe_secret_key of tenant 'acme'" in err
    sandbox_vault.put_secret(
        "recon/tenants/acme",
        {
            "whmcs_api_identifier": "ident-1",
            "whmcs_api_secret": "s" * 20,
            "stripe_secret_key": "x" * 24,
        },
    )
    code, out, err = run(capsys, "doctor")
    assert code == 0, err
    assert "all checks passed" in out
    assert "s" * 20 not in out + err


def test_demo_runs_on_embedded_defaults_and_again(tmp_path: Path) -> None:
    env = {"RECON_DATA_DIR": str(tmp_path / "var")}
    first = run_process("demo", "--no-ui", env=env)
    assert first.returncode == 0, first.stderr
    assert "all checks passed" in first.stdout
    assert (tmp_path / "var" / "demo" / "recon.db").exists()
    second = run_process("demo", "--no-ui", env=env)
    assert second.returncode == 0, second.stderr
    assert "database at head" in second.stdout
    chain_key = (tmp_path / "var" / "demo" / "sandbox" / "audit-chain-key").read_text().strip()
    verify = run_process(
        "audit", "verify",
        env={**env, "RECON_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'demo' / 'recon.db'}",
             "RECON_SECRET_AUDIT_CHAIN_KEY": chain_key},
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    # every audited decision (tenant added, settings changed, runs...) is one verified entry
    assert verify_count(verify.stdout, "demo") == audit_rows(tmp_path / "var" / "demo", "demo") > 0


def verify_count(stdout: str, tenant: str) -> int:
    """N of `<tenant>: N entries verified` in `recon audit verify`'s output."""
    match = re.search(rf"^{re.escape(tenant)}: (\d+) entries verified", stdout, re.MULTILINE)
    assert match, stdout
    return int(match.group(1))


def audit_rows(demo_dir: Path, tenant: str) -> int:
    """The tenant's audit_log rows, read straight from the demo's SQLite file."""
    with sqlite3.connect(demo_dir / "recon.db") as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM audit_log WHERE tenant_id = ?", (tenant,)
        ).fetchone()
    return int(count)


def quarantined_rows(demo_dir: Path) -> int:
    """Rows in quarantine, read straight from the demo's SQLite file."""
    with sqlite3.connect(demo_dir / "recon.db") as conn:
        (count,) = conn.execute("SELECT count(*) FROM quarantined_rows").fetchone()
    return int(count)


def demo_exports(stdout: str) -> list[str]:
    """The `export NAME=...` lines the demo prints for working on its database afterwards."""
    return [line.strip() for line in stdout.splitlines() if line.strip().startswith("export ")]


def in_shell(exports: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """`recon ARGS` in a shell that first ran `exports`, as a person pasting them would."""
    script = "\n".join([*exports, 'exec "$0" -m apps "$@"'])
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    return subprocess.run(
        ["bash", "-c", script, sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_run_inside_the_demo_window_with_the_exports_the_demo_prints(tmp_path: Path) -> None:
    """After `make demo`, `recon run` over three days of its window replays what the demo stored:
    exit 0, nothing quarantined, and the chain (keyed with the demo's key) still verifies."""
    env = {"RECON_DATA_DIR": str(tmp_path / "var")}
    demo = run_process("demo", "--no-ui", env=env)
    assert demo.returncode == 0, demo.stderr
    exports = demo_exports(demo.stdout)
    names = {line.removeprefix("export ").split("=", 1)[0] for line in exports}
    assert {"RECON_DATABASE_URL", "RECON_SECRET_AUDIT_CHAIN_KEY"} <= names, demo.stdout
    chain_key = (tmp_path / "var" / "demo" / "sandbox" / "audit-chain-key").read_text().strip()
    assert chain_key not in demo.stdout  # the demo prints how to read the key, not the key
    quarantined_before = quarantined_rows(tmp_path / "var" / "demo")
    today = dt.datetime.now(dt.UTC).date()
    start, end = today - dt.timedelta(days=45), today - dt.timedelta(days=43)
    result = in_shell(
        exports, "run", "--tenant", "demo", "--from", start.isoformat(), "--to", end.isoformat()
    )
    assert result.returncode == 0, result.stderr
    listed = in_shell(exports, "runs", "list", "--tenant", "demo", "--json", "--limit", "1")
    assert listed.returncode == 0, listed.stderr
    (latest,) = json.loads(listed.stdout)
    assert latest["status"] == "completed"
    assert (latest["window_from"], latest["window_to"]) == (start.isoformat(), end.isoformat())
    sources = latest["counts"]["sources"]
    assert sources and all(figures["replayed"] for figures in sources.values()), sources
    quarantined = {name: figures["quarantined"] for name, figures in sources.items()}
    assert quarantined == dict.fromkeys(sources, 0)
    assert quarantined_rows(tmp_path / "var" / "demo") == quarantined_before
    assert sum(figures["loaded"] for figures in sources.values()) > 0
    verify = in_shell(exports, "audit", "verify")
    assert verify.returncode == 0, verify.stderr
    assert verify_count(verify.stdout, "demo") == audit_rows(tmp_path / "var" / "demo", "demo")
    # `make demo` again in that shell still uses the demo's own database and chain key
    shell = [f"export RECON_DATA_DIR={tmp_path / 'var'}", *exports]
    again = in_shell(shell, "demo", "--no-ui")
    assert again.returncode == 0, again.stderr
    assert "database at head" in again.stdout
    assert not (tmp_path / "var" / "sandbox").exists()  # no second chain key was made
    verify = in_shell(exports, "audit", "verify")
    assert verify.returncode == 0, verify.stderr
    assert verify_count(verify.stdout, "demo") == audit_rows(tmp_path / "var" / "demo", "demo")


@pytest.mark.postgres
def test_upgrade_of_postgresql_without_pg_dump_needs_no_backup_flag(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    pg_owner_url: str,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("RECON_DATABASE_URL", pg_owner_url)
    assert run(capsys, "db", "upgrade", "0001")[0] == 0
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump on it
    code, _, err = run(capsys, "db", "upgrade")
    assert code != 0
    assert "pg_dump is not installed" in err and "--no-backup" in err
    assert run(capsys, "db", "status")[0] != 0  # nothing was migrated without the backup
    code, _, err = run(capsys, "db", "upgrade", "--no-backup")
    assert code == 0, err
    assert run(capsys, "db", "status")[0] == 0


def test_webhook_receiver_refuses_to_start_without_a_prefect_server(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    run(capsys, "db", "upgrade")
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        code, _, err = run(capsys, "webhooks", "serve")
    assert code != 0 and "PREFECT_API_URL" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--tenant", "acme", "--from", "2026-13-01", "--to", "2026-10-31"], "--from"),
        (["--tenant", "acme", "--from", "2026-11-01", "--to", "2026-10-31"], "after --to"),
        (["--tenant", "nobody", "--from", "2026-10-01", "--to", "2026-10-31"], "no tenant"),
    ],
)
def test_run_rejects_bad_arguments_in_one_sentence(
    capsys: pytest.CaptureFixture[str], db_url: str, args: list[str], needle: str
) -> None:
    run(capsys, "db", "upgrade")
    run(capsys, "tenant", "add", "acme", "--name", "Acme")
    code, _, err = run(capsys, "run", *args)
    assert code != 0 and needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_upgrade_and_status_name_tables_without_a_version(tmp_path: Path) -> None:
    """What an interrupted non-atomic upgrade left is named in one sentence, exit 4."""
    url = f"sqlite:///{tmp_path / 'half.db'}"
    env = {"RECON_DATABASE_URL": url, "RECON_DATA_DIR": str(tmp_path / "var")}
    assert run_process("db", "upgrade", "0001", env=env).returncode == 0
    with sqlite3.connect(tmp_path / "half.db") as conn:
        conn.execute("DELETE FROM alembic_version")
    for command in (["db", "upgrade"], ["db", "status"], ["tenant", "list"]):
        result = run_process(*command, env=env)
        assert result.returncode == SchemaNotAtHeadError.exit_code, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, (command, result.stderr)
        assert "tables of this schema" in lines[0] and "no migration revision" in lines[0]
    assert not (tmp_path / "var" / "backups").exists()  # nothing to back up before refusing


def test_flows_started_by_the_cli_heartbeat_as_often_as_the_deployments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`recon run`/`backfill`/`demo` call their flow through run_flow: a flow run there sends
    heartbeats every 30 s, as prefect.yaml sets for deployments, even when this process's Prefect
    settings say otherwise (180 s, Prefect's default), so the zombie automation (3 missed
    heartbeats) never crashes a working ad hoc run on a shared server."""
    import yaml
    from prefect import flow
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        get_current_settings,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    from apps.cli.run import HEARTBEAT_SECONDS, run_flow

    root = Path(__file__).resolve().parents[2]
    project = yaml.safe_load((root / "prefect.yaml").read_text())
    pool_env = project["definitions"]["work_pools"]["process"]["job_variables"]["env"]
    assert int(pool_env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"]) == HEARTBEAT_SECONDS

    @flow(name="heartbeat-probe")
    def probe() -> int | None:
        return get_current_settings().flows.heartbeat_frequency  # what the engine beats by

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with (
        prefect_test_harness(server_startup_timeout=60),  # a real, temporary Prefect server
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 180}),
    ):
        assert probe() == 180  # a flow called directly keeps the process's setting
        assert run_flow(probe) == HEARTBEAT_SECONDS
        assert get_current_settings().flows.heartbeat_frequency == 180  # only for that flow
