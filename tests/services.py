"""Access to the real services the integration tests need; a missing one fails loudly."""

from __future__ import annotations

import socket

import pytest

POSTGRES_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
MARIADB_START = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"


def require_service(name: str, host: str, port: int, how_to_start: str) -> None:
    """Fail (never skip) when the service is not listening, saying how to start it."""
    try:
        with socket.create_connection((host, port), timeout=3):
            return
    except OSError:
        pytest.fail(
            f"{name} is not reachable at {host}:{port}; start it with: {how_to_start}",
            pytrace=False,
        )
