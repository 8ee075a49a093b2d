"""`recon run` as a person runs it: Prefect's temporary server dies with it, failures are one line.

* A `recon run` without `PREFECT_API_URL` starts Prefect's temporary server. Killed with SIGKILL
  mid-flow, it must not leave that server behind (reparented, listening, ~200 MB) nor its state.
* A run that fails with a user-facing error prints that error as its only line at the default
  log level below INFO noise, and exits with the documented code: a held batch (11), a
  GoCardless 401 that is an authentication failure (9, and it says so, not "consent expired").
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sandbox.serve import run_in_thread
from connectors.sandbox.world import SandboxWorld, world_ending
from recon.errors import BatchHeldError
from tests.e2e.conftest import BANK_TRANSACTIONS, PrefectServer, _bad_currency
from tests.e2e.helpers import (
    RECON,
    TENANT,
    WORLD_END,
    WORLD_SEED,
    SandboxEnv,
    base_env,
    create_tenant_database,
    descendants,
    living,
    prefect_client_env,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

WINDOW = (str(WORLD_END.replace(day=2)), str(WORLD_END))
STARTED = re.compile(r"Starting temporary server on http://127\.0\.0\.1:(\d+)")
GONE_WITHIN = 30.0  # seconds for the server to notice and stop (its shutdown grace is 10 s)


def _run_argv() -> list[str]:
    return [RECON, "run", "--tenant", TENANT, "--from", WINDOW[0], "--to", WINDOW[1]]


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


@pytest.fixture
def local_env(sandbox_env: SandboxEnv, tmp_path: Path) -> dict[str, str]:
    """A tenant database and the environment of a `recon run` with no Prefect server."""
    url = create_tenant_database(tmp_path / "tenant.db", sandbox_env)
    home = tmp_path / "prefect-home"
    home.mkdir()
    return (
        base_env()
        | {
            "PREFECT_HOME": str(home),
            "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # Prefect's default of 20 s is too short on a busy machine (recon waits longer).
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        }
        | sandbox_env.recon_env(url, tmp_path / "var")
    )


def test_recon_run_killed_takes_its_temporary_prefect_server_with_it(
    local_env: dict[str, str], tmp_path: Path
) -> None:
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            _run_argv(),
            env=local_env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server: list[tuple[int, str]] = []
    try:
        deadline = time.monotonic() + 240
        while "Beginning flow run" not in (text := log_path.read_text(errors="replace")):
            assert process.poll() is None, text[-4000:]
            assert time.monotonic() < deadline, f"the flow never began:\n{text[-4000:]}"
            time.sleep(0.2)
        match = STARTED.search(text)
        assert match, text[-4000:]
        port = int(match.group(1))
        server[:] = descendants(process.pid)
        assert server and _listening(port), "no temporary server under recon run"
        commands = {pid: _cmdline(pid) for pid, _ in server}
        os.kill(process.pid, signal.SIGKILL)  # the command alone, as `kill -9 <pid>` does
        process.wait()
        deadline = time.monotonic() + GONE_WITHIN
        while living(server) or _listening(port):
            assert time.monotonic() < deadline, (
                f"{GONE_WITHIN:.0f} s after recon run was killed its temporary server still "
                f"runs: {[commands[pid] for pid, _ in living(server)]}, port {port} "
                f"{'listening' if _listening(port) else 'closed'}"
            )
            time.sleep(0.2)
        # Its database went with it: no flow run of the killed command is left RUNNING.
        state_dirs = [
            Path(arg) for argv in commands.values() for arg in argv if "recon-prefect-" in arg
        ]
        assert state_dirs, commands
        assert not any(path.exists() for path in state_dirs), state_dirs
    finally:  # leave nothing behind, even when the server outlived the command
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for pid, _ in living(server):
            os.kill(pid, signal.SIGKILL)


# -- failures are one sentence and a documented exit code ------------------------------------------


@pytest.fixture(scope="module")
def broken_sandbox() -> Iterator[SandboxEnv]:
    """A small world whose bank answers every transactions call in a way a run cannot use:
    per test, either unreadable lines (a held batch) or HTTP 401 (set by the test)."""
    world = world_ending(WORLD_END, n_invoices=200, days=30, seed=WORLD_SEED)
    sandbox = SandboxWorld(world, tenant=TENANT, as_of=WORLD_END, bank_daily_limit=100_000)
    with run_in_thread(sandbox.build_app()) as server:
        yield SandboxEnv(sandbox, server)


def _failed_run(
    sandbox: SandboxEnv, prefect_server: PrefectServer, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    url = create_tenant_database(tmp_path / "tenant.db", sandbox)
    env = (
        base_env()
        | prefect_client_env(prefect_server.api_url, tmp_path / "prefect-client")
        | sandbox.recon_env(url, tmp_path / "var")
    )
    return subprocess.run(
        _run_argv(), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )


LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ (INFO|WARNING) +[\w.]+: ")


def _error_lines(stderr: str) -> list[str]:
    """Lines that are neither INFO nor WARNING log records (no ERROR record, no traceback line):
    what a person reads as the outcome."""
    return [line for line in stderr.splitlines() if line.strip() and not LOG_RECORD.match(line)]


def test_a_held_batch_is_one_sentence_and_exit_11(
    broken_sandbox: SandboxEnv, prefect_server: PrefectServer, tmp_path: Path
) -> None:
    faults = broken_sandbox.sandbox.faults["gocardless"]
    faults.clear()
    faults.malform(
        _bad_currency, records=("transactions", "booked"), limit=10**6, path=BANK_TRANSACTIONS
    )
    result = _failed_run(broken_sandbox, prefect_server, tmp_path)
    assert result.returncode == BatchHeldError.exit_code == 11, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    assert _error_lines(result.stderr) == [result.stderr.strip().splitlines()[-1]], result.stderr
    assert "batch was held back" in result.stderr.strip().splitlines()[-1]


def test_a_gocardless_401_says_authentication_failed_not_consent_expired(
    broken_sandbox: SandboxEnv, prefect_server: PrefectServer, tmp_path: Path
) -> None:
    faults = broken_sandbox.sandbox.faults["gocardless"]
    faults.clear()
    faults.status(401, path=BANK_TRANSACTIONS)
    result = _failed_run(broken_sandbox, prefect_server, tmp_path)
    assert result.returncode == 9, result.stderr[-4000:]
    last = result.stderr.strip().splitlines()[-1]
    assert _error_lines(result.stderr) == [last], result.stderr
    assert "authentication" in last.lower() and "consent" not in last.lower(), last
