"""What the end-to-end tests share: subprocesses that are always cleaned up, a Prefect server,
a sandbox world with its tenant database, and checks on the business tables of a database.

Everything here runs on loopback only, in temporary directories, and leaves no process behind:
each subprocess starts in its own session, and stopping it signals its whole process group and
any descendant that left it (a Prefect worker's flow-run processes, uvicorn workers).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, text

from connectors.sandbox.serve import RunningServer
from connectors.sandbox.world import SandboxWorld
from recon.db import migrate
from recon.db.engine import make_engine
from recon.db.tenancy import admin_session, tenant_session
from recon.secrets import SecretResolver
from recon.settings import Settings
from recon.tenants import TenantSettings, add_tenant, get_tenant, parse_settings
from tasks.extract import SourceContext, normalise, plan_sources
from tasks.land import FetchScope, find_replay, stored_pages
from tasks.load import ConservationError, check_conservation, expected_totals, stored_totals

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout's root: where `prefect.yaml` is and where workers run flows from."""

BIN = Path(sys.executable).parent
PREFECT = str(BIN / "prefect")
RECON = str(BIN / "recon")

POOL = "recon-process"
"""The process work pool every deployment of `prefect.yaml` runs on."""

TENANT = "e2e"
WORLD_END = dt.date(2026, 3, 31)
"""A fixed day in the past: the sandbox serves the world as of this day, so every run sees the
same data whatever the date the tests run on."""
WORLD_DAYS = 60
WORLD_INVOICES = 600
WORLD_SEED = 11
WORLD_START = WORLD_END - dt.timedelta(days=WORLD_DAYS - 1)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- processes -------------------------------------------------------------------------------------


Process = tuple[int, str]
"""A process as (pid, start time in clock ticks): a pid alone may be reused once it ended."""


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time), read from /proc (Linux)."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        # "pid (comm) state ppid ... starttime ...": comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), fields[19])
    return table


def descendants(pid: int) -> list[Process]:
    """Every living process below `pid`."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    found: list[Process] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append((child, table[child][1]))
        todo.extend(children.get(child, []))
    return found


def living(processes: Iterable[Process]) -> list[Process]:
    """Those of `processes` that still run (same pid and start time, not a zombie)."""
    alive = []
    for pid, started in processes:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[19] == started and fields[0] != "Z":
            alive.append((pid, started))
    return alive


def _signal(processes: Iterable[Process], sig: signal.Signals) -> None:
    """Signal each process that is still the one recorded (same pid, same start time)."""
    table = _process_table()
    for pid, started in processes:
        if table.get(pid, (0, ""))[1] == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


class Service:
    """A subprocess with its output in a log file, stopped with its whole process tree."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group and every descendant, then SIGKILL what is left."""
        tree = descendants(self.pid)
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            _signal(tree, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        if self.running():
            tree += descendants(self.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        _signal(tree, signal.SIGKILL)  # also those that left the group or lost their parent
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL is not ignored; be safe
            self.process.wait(5)
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the process and every descendant at once, as when a machine dies: no process
        gets a chance to report anything."""
        tree = descendants(self.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        _signal(tree, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self._log.close()

    def log_tail(self, chars: int = 6000) -> str:
        """The end of the process's output."""
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "(no log)"
        return data[-chars:].decode("utf-8", errors="replace")


class ServiceExitedError(Exception):
    """A service ended while it was awaited."""


def wait_until(
    what: str,
    condition: Callable[[], Any],
    *,
    timeout: float,
    interval: float = 0.5,
    diagnostics: Callable[[], str] | None = None,
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
        except ServiceExitedError:
            raise
        except Exception as exc:
            value, last_error = None, exc
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            extra = f"\n{diagnostics()}" if diagnostics else ""
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}{detail}{extra}"
            )
        time.sleep(interval)


def run_cli(argv: list[str], env: Mapping[str, str], timeout: float = 120.0) -> str:
    """Run a command in the checkout; fail with its output unless it exits 0."""
    result = subprocess.run(
        argv,
        env=dict(env),
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(argv[1:])} exited {result.returncode}:\n{output}"
    return output


def prefect_client_env(api_url: str, home: Path) -> dict[str, str]:
    """The Prefect variables of a process that talks to the test server and nothing else."""
    return {
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(home),
        "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_CLI_PROMPT": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }


LOOPBACK = "127.0.0.1,localhost,::1"


def base_env() -> dict[str, str]:
    """This process's environment without RECON_* or PREFECT_* variables, and with loopback
    kept away from any proxy the machine configures."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("RECON_", "PREFECT_"))
    }
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name, ""), LOOPBACK]))
    return env


@dataclass(frozen=True)
class PrefectServer:
    """A running `prefect server start` and its API URL."""

    service: Service
    api_url: str


def start_prefect_server(home: Path, log_path: Path, *, timeout: float = 150.0) -> PrefectServer:
    """`prefect server start` on a free loopback port with its own SQLite database in `home`.

    A port taken between choosing it and binding it makes the server exit at once: that is
    retried on another port.
    """
    home.mkdir(parents=True, exist_ok=True)
    env = base_env() | {
        "PREFECT_HOME": str(home),
        "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    }
    for attempt in range(3):
        port = free_port()
        server = Service(
            "prefect-server",
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
            env=env,
            cwd=home,
            log_path=log_path,
        )
        api_url = f"http://127.0.0.1:{port}/api"

        def healthy(server: Service = server, api_url: str = api_url) -> bool:
            if not server.running():
                raise ServiceExitedError(server.log_tail())
            with httpx.Client(trust_env=False, timeout=2) as client:
                return client.get(f"{api_url}/health").status_code == 200

        try:
            wait_until("the Prefect server's /api/health", healthy, timeout=timeout,
                       diagnostics=server.log_tail)  # fmt: skip
        except ServiceExitedError as exc:
            server.stop()
            if attempt == 2:
                raise AssertionError(f"the Prefect server exited:\n{exc}") from None
            continue
        except BaseException:
            server.stop()
            raise
        return PrefectServer(server, api_url)
    raise AssertionError("unreachable")  # pragma: no cover


# -- the sandbox world and its databases -----------------------------------------------------------


@dataclass(frozen=True)
class SandboxEnv:
    """The sandbox providers, served in this process, and how a subprocess reaches them."""

    sandbox: SandboxWorld
    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.url

    def recon_env(self, database_url: str, data_dir: Path) -> dict[str, str]:
        """The RECON_* variables of a process that reconciles the tenant in `database_url`."""
        credentials = self.sandbox.credentials
        return {
            "RECON_DATABASE_URL": database_url,
            "RECON_DATA_DIR": str(data_dir),
            "RECON_VAULT_ADDR": self.url,
            "RECON_VAULT_ROLE_ID": credentials.vault_role_id,
            "RECON_VAULT_SECRET_ID": credentials.vault_secret_id,
            "RECON_PROJECT_DIR": str(REPO_ROOT),
            "RECON_LOG_LEVEL": "INFO",
        }


def create_tenant_database(path: Path, env: SandboxEnv) -> str:
    """A SQLite FILE migrated to head with the tenant registered against the sandbox."""
    path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        settings = TenantSettings.model_validate(env.sandbox.tenant_settings(env.url))
        with audit_key_of(env), admin_session(engine) as session:
            add_tenant(session, TENANT, "End-to-end Hosting Ltd", settings, actor="e2e")
    finally:
        engine.dispose()
    return url


@contextlib.contextmanager
def audit_key_of(env: SandboxEnv) -> Iterator[None]:
    """While inside, this process keys the audit chain with the key the sandbox's Vault serves
    to the subprocesses (the development variable), so they all extend one chain."""
    key = getattr(env.sandbox.credentials, "audit_chain_key", None)
    name = "RECON_SECRET_AUDIT_CHAIN_KEY"
    before = os.environ.get(name)
    if key:
        os.environ[name] = key
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


# -- what a database holds -------------------------------------------------------------------------

# Natural columns of each business table: no surrogate ids, timestamps or run ids.
BUSINESS_COLUMNS: dict[str, tuple[str, ...]] = {
    "transactions": ("tenant_id", "source", "account_ref", "source_id", "kind", "status",
                     "booked_on", "value_on", "amount_minor", "fee_minor", "currency",
                     "counterparty", "reference", "payout_id", "content_sha256"),
    "invoices": ("tenant_id", "invoice_id", "invoice_num", "client_id", "client_name",
                 "company_name", "issued_on", "due_on", "total_minor", "balance_minor",
                 "currency", "status", "content_sha256"),
    "recorded_payments": ("tenant_id", "whmcs_txn_id", "invoice_id", "recorded_on",
                          "amount_minor", "fees_minor", "currency", "gateway", "transid",
                          "content_sha256"),
    "payouts": ("tenant_id", "source", "payout_id", "arrival_on", "amount_minor", "currency",
                "status", "content_sha256"),
    "payout_lines": ("tenant_id", "source", "payout_id", "transaction_id", "content_sha256"),
    "allocations": ("tenant_id", "allocation_key", "transaction_ref", "invoice_id",
                    "amount_minor", "currency", "rule", "confidence", "decision", "origin",
                    "reverses_id", "created_by"),
    "exceptions": ("tenant_id", "exception_key", "kind", "transaction_ref", "invoice_id",
                   "amount_minor", "currency", "detail", "status", "assignee", "resolution",
                   "resolved_by"),
    "matches": ("tenant_id", "match_key", "kind", "left_ref", "right_ref", "rule", "confidence",
                "amount_minor", "currency", "origin", "reverses_id", "created_by"),
    "quarantined_rows": ("tenant_id", "provider", "dataset", "account_ref", "row_key",
                         "booked_on", "amount_minor", "currency", "reasons", "record"),
}  # fmt: skip

# The idempotency key of each table (its unique constraint besides the surrogate id).
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "transactions": ("tenant_id", "source", "account_ref", "source_id"),
    "invoices": ("tenant_id", "invoice_id"),
    "recorded_payments": ("tenant_id", "whmcs_txn_id"),
    "payouts": ("tenant_id", "source", "payout_id"),
    "payout_lines": ("tenant_id", "source", "payout_id", "transaction_id"),
    "allocations": ("tenant_id", "allocation_key"),
    "exceptions": ("tenant_id", "exception_key"),
    "matches": ("tenant_id", "match_key"),
    "quarantined_rows": ("tenant_id", "provider", "dataset", "row_key"),
    "raw_payloads": ("tenant_id", "fetch_id", "page"),
    "webhook_events": ("tenant_id", "provider", "event_id"),
}


def snapshot(engine: Engine) -> dict[str, Counter[tuple[Any, ...]]]:
    """Each business table as a multiset of its natural columns' values."""
    tables: dict[str, Counter[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table, columns in BUSINESS_COLUMNS.items():
            key = NATURAL_KEYS[table][-1]
            # a reversal names what it reverses by its natural key, not by a surrogate id
            selected = [
                f"(SELECT r.{key} FROM {table} r WHERE r.id = t.reverses_id)"
                if column == "reverses_id"
                else f"t.{column}"
                for column in columns
            ]
            rows = connection.execute(text(f"SELECT {', '.join(selected)} FROM {table} t")).all()
            tables[table] = Counter(tuple(row) for row in rows)
    return tables


def duplicate_keys(engine: Engine) -> dict[str, int]:
    """Per table, how many natural keys appear more than once (all zero when sound)."""
    found: dict[str, int] = {}
    with engine.connect() as connection:
        for table, key in NATURAL_KEYS.items():
            cols = ", ".join(key)
            found[table] = int(
                connection.execute(
                    text(
                        f"SELECT COUNT(*) FROM (SELECT {cols} FROM {table} "
                        f"GROUP BY {cols} HAVING COUNT(*) > 1)"
                    )
                ).scalar_one()
            )
    return found


def diff_snapshots(
    left: Mapping[str, Counter[tuple[Any, ...]]], right: Mapping[str, Counter[tuple[Any, ...]]]
) -> str:
    """A short description of how two snapshots differ ('' when equal)."""
    lines: list[str] = []
    for table in BUSINESS_COLUMNS:
        only_left = left[table] - right[table]
        only_right = right[table] - left[table]
        if only_left or only_right:
            lines.append(
                f"{table}: {sum(only_left.values())} rows only in the crashed database, "
                f"{sum(only_right.values())} only in the reference"
            )
            lines += [f"  - {row}" for row in list(only_left)[:3]]
            lines += [f"  + {row}" for row in list(only_right)[:3]]
    return "\n".join(lines)


def conservation_failures(
    engine: Engine, tenant: str, window: tuple[dt.date, dt.date]
) -> list[str]:
    """Check R7 on what the database holds: for every source of the tenant, the newest complete
    fetch covering `window` exists, and every distinct raw record of its landed pages is loaded
    or quarantined, by count and by sum per (account, currency, day). Returns what is wrong."""
    with admin_session(engine) as session:
        settings = parse_settings(get_tenant(session, tenant).settings)
    ctx = SourceContext(engine, tenant, settings, SecretResolver(Settings()))
    failures: list[str] = []
    for source in plan_sources(settings):
        scope = FetchScope(source.provider, source.account_ref, source.dataset, *window)
        fetch_id = find_replay(engine, tenant, scope)
        if fetch_id is None:
            failures.append(f"{source.kind} {source.account_ref}: no complete fetch of {window}")
            continue
        for batch in normalise(ctx, source, stored_pages(engine, tenant, fetch_id)):
            with tenant_session(engine, tenant) as session:
                try:
                    check_conservation(
                        expected_totals(batch),
                        stored_totals(session, batch, tenant),
                        f"{batch.provider} {batch.dataset.name}",
                    )
                except ConservationError as exc:
                    failures.append(str(exc))
    return failures


def table_counts(engine: Engine, tables: Iterable[str]) -> dict[str, int]:
    """Row counts of some tables."""
    with engine.connect() as connection:
        return {
            table: int(connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
            for table in tables
        }


class PrefectReads:
    """Reads of the Prefect server's REST API that the end-to-end stacks share."""

    api: httpx.Client

    def flow_run(self, flow_run_id: str) -> dict[str, Any]:
        """One flow run, as the API returns it."""
        response = self.api.get(f"/flow_runs/{flow_run_id}")
        response.raise_for_status()
        return dict(response.json())

    def deployment(self, name: str) -> dict[str, Any]:
        """One deployment by its `flow/deployment` name."""
        response = self.api.get(f"/deployments/name/{name}")
        response.raise_for_status()
        return dict(response.json())

    def flow_runs_of(self, deployment_id: str) -> list[dict[str, Any]]:
        """The flow runs of one deployment (at most 50)."""
        response = self.api.post(
            "/flow_runs/filter",
            json={"flow_runs": {"deployment_id": {"any_": [deployment_id]}}, "limit": 50},
        )
        response.raise_for_status()
        return list(response.json())
