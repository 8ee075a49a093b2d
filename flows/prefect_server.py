"""Prefect's temporary local API, tied to the life of the command that started it.

Without `PREFECT_API_URL`, a flow run needs Prefect's temporary API server (a uvicorn
subprocess). Prefect's own `SubprocessASGIServer` outlives a command killed with SIGKILL (about
200 MB each time, with the command's flow runs left `RUNNING` in Prefect's database), and
importing it costs the command seconds of its own before the server process even starts. So the
command starts the server itself, under a guard:

* the server process holds the read end of a pipe whose only write end is in the command's
  process; the kernel closes it when the command dies, however it dies, and the guard then
  stops the server (SIGTERM to itself, a hard exit if shutting down hangs);
* unless Prefect's database is configured explicitly, the server keeps its state in a private
  temporary directory that it removes when it exits, so nothing of a killed command's flow
  runs stays behind as `RUNNING`; the command's own record of a run is the `runs` table;
* starting is split from waiting (`begin_local_prefect_api`, then `LocalServer.wait_ready`), so a
  command imports its flow while the server boots on the other core; and the server's private
  database starts as a copy of an already migrated one (kept in `PREFECT_HOME`, one per Prefect
  version), so Prefect's migrations run once per machine rather than once per command;
* flow runs reach it through `api_settings()`, which `flows.launch.run_flow` applies around each
  flow call: the process's environment is left alone, so `PREFECT_API_URL` keeps meaning "a
  Prefect server someone runs" to the code that decides between a deployment and a local run.

The server side is this module's `main`, run as `python -m flows.prefect_server`. It lives below
the entry points because the CLI (`recon run`, `backfill`, `demo`) and the UI's re-run form both
start local runs; `apps/prefect_server.py` re-exports it.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

STARTUP_TIMEOUT_SECONDS = 120  # Prefect's default of 20 s is too short on a busy machine
SHUTDOWN_GRACE_SECONDS = 10.0
PORT_IN_USE_EXIT = 3  # uvicorn's exit code when the port was taken between choosing and binding
_DATABASE_SETTINGS = (
    "PREFECT_SERVER_DATABASE_CONNECTION_URL",
    "PREFECT_API_DATABASE_CONNECTION_URL",
)

log = logging.getLogger("prefect")  # where Prefect announces its own temporary server


@dataclass
class LocalServer:
    """The guarded temporary server of this process: started, maybe not yet answering."""

    port: int
    env: dict[str, str]
    template: Path  # the migrated database kept for later starts (`_template`)
    process: subprocess.Popen[bytes] | None = None
    state_dir: str | None = None
    ready: bool = False
    announced: bool = False
    from_template: bool = False
    _lifeline: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_url(self) -> str:
        """The API address flow runs of this process use."""
        return f"http://127.0.0.1:{self.port}/api"

    def launch(self) -> None:
        """Start the server process (on this server's port) without waiting for it."""
        self._cut_lifeline()  # a restart on another port replaces the previous process
        self.from_template = False
        env = dict(self.env)
        state_dir = tempfile.mkdtemp(prefix="recon-prefect-")
        if not any(env.get(name) for name in _DATABASE_SETTINGS):
            database = Path(state_dir) / "prefect.db"
            if self.template.is_file():
                shutil.copyfile(self.template, database)
                self.from_template = True
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{database}"
        read_end, write_end = os.pipe()  # neither end is inherited by other children
        try:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [
                    sys.executable, "-m", "flows.prefect_server",
                    str(read_end), state_dir,
                    "--app-dir", _prefect_package_parent(),
                    "--factory", "prefect.server.api.server:create_app",
                    "--host", "127.0.0.1", "--port", str(self.port),
                    "--log-level", "error", "--lifespan", "on",
                ],
                env=env,
                pass_fds=(read_end,),
            )  # fmt: skip
        except BaseException:
            os.close(write_end)
            shutil.rmtree(state_dir, ignore_errors=True)
            raise
        finally:
            os.close(read_end)
        self.process, self._lifeline, self.state_dir = process, write_end, state_dir
        self.announced = False

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        """Block until the server answers its health check; raise a RuntimeError of one
        sentence when it exits or does not answer in time."""
        import httpx

        with self._lock:
            if self.ready:
                return
            self._announce()
            deadline = time.monotonic() + timeout
            with httpx.Client(trust_env=False, timeout=5) as client:
                while time.monotonic() < deadline:
                    assert self.process is not None
                    code = self.process.poll()
                    if code is not None and self.from_template:
                        # A failed start (uvicorn's code 3 too) from a copied database: start
                        # again from nothing, on a new port in case that was taken.
                        self._drop_template()
                        self.port = _free_port()
                        self.launch()
                        self._announce()
                        continue
                    if code == PORT_IN_USE_EXIT:
                        self.port = _free_port()
                        self.launch()
                        self._announce()
                        continue
                    if code is not None:
                        self.stop()
                        raise RuntimeError(
                            f"Prefect's temporary server exited with code {code} while starting"
                        )
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(f"{self.api_url}/health").status_code == 200:
                            self.ready = True
                            break
                    time.sleep(0.1)
            if not self.ready:
                self.stop()
                raise RuntimeError(
                    f"Prefect's temporary server did not answer within {timeout:.0f} s"
                )
        self._keep_template()

    def _announce(self) -> None:
        """Say where the server is, as Prefect does for its own (once Prefect's logging is set
        up, which is not yet the case when the server is launched early)."""
        if not self.announced:
            log.info("Starting temporary server on http://127.0.0.1:%d", self.port)
            self.announced = True

    def stop(self) -> None:
        """Stop the server process and remove its state."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=SHUTDOWN_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.ready = False
        self._cut_lifeline()

    def _drop_template(self) -> None:
        """Forget a template the server could not start from; the next start keeps a new one."""
        log.warning(
            "Prefect's temporary server could not start from %s; migrating anew", self.template
        )
        with contextlib.suppress(OSError):
            self.template.unlink()

    def _keep_template(self) -> None:
        """Copy the freshly migrated database, before any flow run, as the next start's."""
        if self.template.exists() or self.state_dir is None:
            return
        database = Path(self.state_dir) / "prefect.db"
        if not database.is_file():
            return
        partial = self.template.with_name(f"{self.template.name}.{os.getpid()}.partial")
        try:
            self.template.parent.mkdir(parents=True, exist_ok=True)
            with (
                contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as src,
                contextlib.closing(sqlite3.connect(partial)) as dst,
            ):
                src.backup(dst)  # a consistent copy of a database in use
            os.replace(partial, self.template)
        except (OSError, sqlite3.Error):  # only a missed saving: the next start migrates again
            log.debug("could not keep Prefect's migrated database as a template", exc_info=True)
            with contextlib.suppress(OSError):
                partial.unlink()

    def _cut_lifeline(self) -> None:
        """Let the server process go and remove its state (if it could not, being killed)."""
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None
        if self.state_dir is not None and (self.process is None or self.process.poll() is not None):
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None


_server: LocalServer | None = None
_server_lock = threading.Lock()


def begin_local_prefect_api() -> LocalServer | None:
    """Start this process's guarded temporary server, without waiting for it to answer.

    Returns None when `PREFECT_API_URL` names a server or ephemeral mode is off; the same server
    on every call otherwise (started once per process, stopped at exit). Importing Prefect takes
    seconds: when it is not imported yet, the server is launched first and Prefect's settings are
    read while it boots (a profile may still name a server or turn ephemeral mode off, and the
    server is then stopped unused).
    """
    global _server
    with _server_lock:
        if _server is not None:
            return _server
        if os.environ.get("PREFECT_API_URL"):
            return None
        server = LocalServer(port=_free_port(), env=_server_environment(), template=_template())
        server.launch()
        atexit.register(server.stop)
        from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

        if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
            server.stop()
            return None
        _server = server
        return server


def _server_environment() -> dict[str, str]:
    """The server's environment: this process's, Prefect's settings of this process when Prefect
    is already imported (they may have been changed in it), and the temporary server's own."""
    env = dict(os.environ)
    if "prefect.settings" in sys.modules:
        from prefect.settings import get_current_settings

        env.update(get_current_settings().to_environment_variables(exclude_unset=True))
    return {
        **env,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        # No telemetry from a throwaway server (it also raced the first requests for Prefect's
        # SQLite database: "database is locked").
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def _template() -> Path:
    """Where the migrated database for this Prefect version is kept: in `PREFECT_HOME`."""
    if "prefect.settings" in sys.modules:
        from prefect.settings import PREFECT_HOME

        home = Path(PREFECT_HOME.value())
    else:
        home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    return home / f"recon-server-{_prefect_version()}.db"


def _prefect_version() -> str:
    from importlib.metadata import version

    return version("prefect")


def _prefect_package_parent() -> str:
    """The directory holding the `prefect` package, found without importing it."""
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the prefect package is not installed")
    return str(Path(next(iter(spec.submodule_search_locations))).parent)


def local_prefect_api() -> None:
    """Make sure flow runs in this process have an API: the guarded temporary server when
    `PREFECT_API_URL` is unset (started once per process and answering when this returns),
    nothing otherwise."""
    server = begin_local_prefect_api()
    if server is not None:
        server.wait_ready(_startup_timeout())


@contextlib.contextmanager
def api_settings() -> Iterator[None]:
    """Point Prefect at this process's temporary server, if one was started, for the block.

    Both the current context and Prefect's process-global one (what threads without their own
    context read) are pointed at it, as Prefect's own test harness does: a Prefect call from any
    thread of a flow run must never start a second, unguarded server.
    """
    server = _server
    if server is None:
        yield
        return
    server.wait_ready(_startup_timeout())
    import prefect.context
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        make_global = getattr(prefect.context, "_temporary_global_settings_context", None)
        if make_global is None:
            yield
        else:
            with make_global(prefect.context.get_settings_context()):
                yield


def _startup_timeout() -> float:
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    configured = float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    return max(STARTUP_TIMEOUT_SECONDS, configured)


def _free_port() -> int:
    """A port nothing listens on now (the kernel's choice); uvicorn exits with code 3 if another
    process takes it first, and the server is started again on another."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the server side ---------------------------------------------------------------------------


def _watch(lifeline: int, state_dir: str) -> None:
    """Block until the parent's end of the pipe closes, then stop this process."""
    while True:
        try:
            if not os.read(lifeline, 1):
                break
        except OSError:
            break
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn shuts down gracefully on SIGTERM
    timer = threading.Timer(SHUTDOWN_GRACE_SECONDS, _hard_exit, args=(state_dir,))
    timer.daemon = True
    timer.start()


def _hard_exit(state_dir: str) -> None:
    """The server did not stop in time: remove its state and exit now."""
    shutil.rmtree(state_dir, ignore_errors=True)
    os._exit(1)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    """`python -m flows.prefect_server LIFELINE_FD STATE_DIR UVICORN_ARGS...`."""
    lifeline, state_dir, uvicorn_args = int(argv[0]), argv[1], argv[2:]
    watcher = threading.Thread(
        target=_watch, args=(lifeline, state_dir), name="lifeline", daemon=True
    )
    watcher.start()
    # uvicorn stops gracefully on SIGTERM, then raises it again under the handler found at its
    # start: make that an exit that runs the clean-up below rather than an abrupt death.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    from uvicorn.main import main as uvicorn_main

    try:
        uvicorn_main.main(args=uvicorn_args, prog_name="uvicorn", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
