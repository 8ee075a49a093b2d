"""Serve an ASGI app with a real uvicorn server in a background thread (tests and the demo)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp


class RunningServer:
    """A uvicorn server running in a daemon thread; a context manager that stops it on exit."""

    def __init__(
        self, server: uvicorn.Server, thread: threading.Thread, sock: socket.socket, url: str
    ) -> None:
        self.url = url
        self._server = server
        self._thread = thread
        self._sock = sock

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._sock.getsockname()[1])

    def stop(self, grace: float = 1.0, timeout: float = 5.0) -> None:
        """Ask the server to exit; after `grace` s, drop open connections; release the socket."""
        self._server.should_exit = True
        self._thread.join(grace)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        self._sock.close()
        if self._thread.is_alive():
            raise RuntimeError(f"sandbox server at {self.url} did not stop within {timeout} s")

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_in_thread(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    access_log: bool = False,
    startup_timeout: float = 10.0,
) -> RunningServer:
    """Start `app` on `host:port` (0: a free port) and return once it accepts connections.

    With `ssl_certfile` and `ssl_keyfile` it serves HTTPS. Logging is left to the caller's config.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections (else: 40 ms stalls)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    scheme = "https" if ssl_certfile else "http"
    netloc = f"[{host}]" if family == socket.AF_INET6 else host
    url = f"{scheme}://{netloc}:{bound_port}"

    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=access_log,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{bound_port}", daemon=True
    )
    running = RunningServer(server, thread, sock, url)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            running.stop(grace=0.0, timeout=1.0)
            raise RuntimeError(f"sandbox server at {url} did not start")
        time.sleep(0.005)
    with socket.create_connection((host, bound_port), timeout=startup_timeout):
        pass
    return running
