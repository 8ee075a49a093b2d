"""Prefect's temporary local API, tied to the life of the command that started it.

Without `PREFECT_API_URL`, a flow run starts Prefect's temporary API server (a uvicorn
subprocess) and stops it at interpreter exit. A command killed with SIGKILL never gets there:
the server lives on, reparented, about 200 MB each time, with the command's flow runs left
`RUNNING` in Prefect's database. `local_prefect_api()` starts that same server under a guard:

* the server process holds the read end of a pipe whose only write end is in the command's
  process; the kernel closes it when the command dies, however it dies, and the guard then
  stops the server (SIGTERM to itself, a hard exit if shutting down hangs);
* unless Prefect's database is configured explicitly, the server keeps its state in a private
  temporary directory that it removes when it exits, so nothing of a killed command's flow
  runs stays behind as `RUNNING`; the command's own record of a run is the `runs` table.

The server side is this module's `main`, run as `python -m flows.prefect_server`. It lives below
the entry points because the CLI (`recon run`, `backfill`, `demo`) and the UI's re-run form both
start local runs; `apps/prefect_server.py` re-exports it.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess

STARTUP_TIMEOUT_SECONDS = 120  # Prefect's default of 20 s is too short on a busy machine
SHUTDOWN_GRACE_SECONDS = 10.0
_DATABASE_SETTINGS = (
    "PREFECT_SERVER_DATABASE_CONNECTION_URL",
    "PREFECT_API_DATABASE_CONNECTION_URL",
)


def local_prefect_api() -> None:
    """Make sure a flow run in this process talks to a guarded temporary server, if any.

    Does nothing when `PREFECT_API_URL` names a server or ephemeral mode is off, and starts the
    server once per process (Prefect's own exit handler stops it as before).
    """
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    )

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    server_class = _guarded_server_class()
    existing = SubprocessASGIServer._instances.get(None)
    if existing is not None and existing.running:
        return  # already serving this process (guarded, or started before we could guard it)
    SubprocessASGIServer._instances.pop(None, None)
    server = server_class()  # registered as Prefect's instance: every client here finds it
    timeout = max(STARTUP_TIMEOUT_SECONDS, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    server.start(timeout=timeout)


def _guarded_server_class() -> type[Any]:
    """Prefect's `SubprocessASGIServer`, whose process is started under the guard."""
    from prefect.server.api.server import SubprocessASGIServer

    class GuardedASGIServer(SubprocessASGIServer):
        """The temporary server, run by `python -m flows.prefect_server` with a lifeline."""

        _lifeline: int | None = None
        _state_dir: str | None = None

        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            import subprocess

            import prefect
            from prefect.settings import get_current_settings

            self._cut_lifeline()  # a restart on another port replaces the previous process
            env = {
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
                **get_current_settings().to_environment_variables(exclude_unset=True),
            }
            state_dir = tempfile.mkdtemp(prefix="recon-prefect-")
            if not any(env.get(name) for name in _DATABASE_SETTINGS):
                database = Path(state_dir) / "prefect.db"
                env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{database}"
            read_end, write_end = os.pipe()  # neither end is inherited by other children
            try:
                process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                    [
                        sys.executable, "-m", "flows.prefect_server",
                        str(read_end), state_dir,
                        "--app-dir", str(prefect.__module_path__.parent),
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
            self._lifeline, self._state_dir = write_end, state_dir
            return process

        def stop(self) -> None:
            super().stop()
            self._cut_lifeline()

        def _cut_lifeline(self) -> None:
            """Let the server process go and remove its state (if it could not, being killed)."""
            if self._lifeline is not None:
                os.close(self._lifeline)
                self._lifeline = None
            if self._state_dir is not None and (
                self.server_process is None or self.server_process.poll() is not None
            ):
                shutil.rmtree(self._state_dir, ignore_errors=True)
                self._state_dir = None

    return GuardedASGIServer


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
